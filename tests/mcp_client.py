"""A bridge from drop's end-to-end tests to the official MCP Python SDK.

Usage: python mcp_client.py SPEC, where SPEC is JSON naming the server to
start over stdio: {"command", "args", "env", "cwd"}. The SDK's `Client`
starts it, negotiates the protocol, and then this script obeys one JSON
request a line on stdin, answering one JSON object a line on stdout:

    {"id": 1, "op": "list_tools"}                 -> {"id": 1, "tools": [...]}
    {"id": 2, "op": "call", "tool": T, "args": A} -> {"id": 2, "result": CallToolResult}
                                         progress -> {"id": 2, "progress": {...}}
    {"id": 3, "op": "cancel", "call": 2}          -> {"id": 2, "cancelled": true}

Calls run concurrently, so a test can open a page while `wait` waits. An
exception the SDK raises (a protocol error, a result that does not match
the tool's output schema) is answered as {"id": N, "exception": TEXT}. At
the end of stdin the session is closed as the SDK closes it. The first line
is {"ready": {...}} with the negotiated protocol version and server info.
"""

import json
import sys

import anyio
from mcp import Client, StdioServerParameters


def emit(message):
    print(json.dumps(message), flush=True)


async def call(client, request, scopes):
    call_id = request["id"]

    async def progress(value, total, message):
        emit({"id": call_id, "progress": {"progress": value, "total": total, "message": message}})

    with anyio.CancelScope() as scope:
        scopes[call_id] = scope
        try:
            result = await client.call_tool(request["tool"], request.get("args") or {}, progress_callback=progress)
            emit({"id": call_id, "result": result.model_dump(mode="json", by_alias=True, exclude_none=True)})
        except Exception as error:  # the test reads what went wrong
            emit({"id": call_id, "exception": f"{type(error).__name__}: {error}"})
    if scope.cancelled_caught:
        emit({"id": call_id, "cancelled": True})
    scopes.pop(call_id, None)


async def list_tools(client, request):
    listed = await client.list_tools()
    tools = [tool.model_dump(mode="json", by_alias=True, exclude_none=True) for tool in listed.tools]
    emit({"id": request["id"], "tools": tools})


async def main():
    spec = json.loads(sys.argv[1])
    server = StdioServerParameters(
        command=spec["command"], args=spec["args"], env=spec["env"], cwd=spec["cwd"]
    )
    async with Client(server) as client:
        info = client.server_info.model_dump(mode="json", by_alias=True, exclude_none=True)
        emit({"ready": {"protocol_version": client.protocol_version, "server": info}})
        scopes = {}
        async with anyio.create_task_group() as tasks:
            async for line in anyio.wrap_file(sys.stdin):
                if not line.strip():
                    continue
                request = json.loads(line)
                if request["op"] == "list_tools":
                    tasks.start_soon(list_tools, client, request)
                elif request["op"] == "call":
                    tasks.start_soon(call, client, request, scopes)
                elif request["op"] == "cancel" and request["call"] in scopes:
                    scopes[request["call"]].cancel()
            tasks.cancel_scope.cancel()


if __name__ == "__main__":
    anyio.run(main)
