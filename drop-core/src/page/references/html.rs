//! The attributes of an HTML document's tags, read by a small tokenizer
//! that knows tags, comments and raw-text elements, and nothing else.

/// One attribute of a start tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Attribute {
    /// The tag's name, lower case.
    pub tag: String,
    /// The attribute's name, lower case.
    pub name: String,
    /// Its value with character references decoded; empty when it has none.
    pub value: String,
}

/// Elements whose content is text up to their end tag, not markup: a
/// `<script>` holding `"<a href=x>"` has no link.
const RAW_TEXT: &[&str] = &[
    "script", "style", "textarea", "title", "xmp", "iframe", "noembed", "noframes",
];

/// Every attribute of every start tag, in document order. Text, comments,
/// doctypes, end tags and the content of raw-text elements hold none.
pub(super) fn attributes(html: &str) -> Vec<Attribute> {
    let bytes = html.as_bytes();
    let mut found = Vec::new();
    let mut at = 0;
    while let Some(lt) = find(bytes, at, b"<") {
        let rest = &bytes[lt + 1..];
        at = if rest.starts_with(b"!--") {
            find(bytes, lt + 4, b"-->").map_or(bytes.len(), |end| end + 3)
        } else if rest.first().is_some_and(|b| b"!?/".contains(b)) {
            find(bytes, lt + 1, b">").map_or(bytes.len(), |end| end + 1)
        } else if rest.first().is_some_and(u8::is_ascii_alphabetic) {
            start_tag(html, lt + 1, &mut found)
        } else {
            lt + 1 // a `<` in text
        };
    }
    found
}

/// Reads the start tag whose name begins at `at`, adds its attributes to
/// `found`, and returns where markup resumes: after the tag, or after the
/// end tag of a raw-text element.
fn start_tag(html: &str, at: usize, found: &mut Vec<Attribute>) -> usize {
    let bytes = html.as_bytes();
    let name_end = scan(bytes, at, |b| {
        b.is_ascii_whitespace() || b == b'/' || b == b'>'
    });
    let tag = html[at..name_end].to_ascii_lowercase();
    let mut i = name_end;
    loop {
        i = scan(bytes, i, |b| !b.is_ascii_whitespace() && b != b'/');
        if i >= bytes.len() || bytes[i] == b'>' {
            break;
        }
        let (attribute, next) = attribute(html, i, &tag);
        found.push(attribute);
        i = next;
    }
    let after = (i + 1).min(bytes.len());
    if !RAW_TEXT.contains(&tag.as_str()) {
        return after;
    }
    let close = format!("</{tag}");
    find_ignoring_case(bytes, after, close.as_bytes()).unwrap_or(bytes.len())
}

/// Reads the attribute that begins at `at`; returns it and where the next
/// one may begin.
fn attribute(html: &str, at: usize, tag: &str) -> (Attribute, usize) {
    let bytes = html.as_bytes();
    // The spec lets a name begin with `=`; skip it so the name is not empty.
    let end = scan(bytes, at + 1, |b| {
        b.is_ascii_whitespace() || b"/>=".contains(&b)
    });
    let name = html[at..end].to_ascii_lowercase();
    let eq = scan(bytes, end, |b| !b.is_ascii_whitespace());
    let (raw, next) = if bytes.get(eq) == Some(&b'=') {
        value(html, scan(bytes, eq + 1, |b| !b.is_ascii_whitespace()))
    } else {
        ("", end)
    };
    let attribute = Attribute {
        tag: tag.to_owned(),
        name,
        value: decode_references(raw),
    };
    (attribute, next)
}

/// The raw value that begins at `at`, quoted or not, and where it ends.
fn value(html: &str, at: usize) -> (&str, usize) {
    let bytes = html.as_bytes();
    match bytes.get(at) {
        Some(&quote) if quote == b'"' || quote == b'\'' => {
            let end = find(bytes, at + 1, &[quote]).unwrap_or(bytes.len());
            (&html[at + 1..end], (end + 1).min(bytes.len()))
        }
        _ => {
            let end = scan(bytes, at, |b| b.is_ascii_whitespace() || b == b'>');
            (&html[at..end], end)
        }
    }
}

/// Decodes numeric character references and the named ones a URL may
/// hold; any other `&` is left as written.
fn decode_references(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let decoded = rest
            .find(';')
            .and_then(|semi| Some((character(&rest[1..semi])?, semi + 1)));
        match decoded {
            Some((c, len)) => {
                out.push(c);
                rest = &rest[len..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The character a reference's name (between `&` and `;`) stands for.
fn character(name: &str) -> Option<char> {
    let code = match name.strip_prefix('#') {
        Some(hex) if hex.starts_with(['x', 'X']) => u32::from_str_radix(&hex[1..], 16).ok()?,
        Some(decimal) => decimal.parse().ok()?,
        None => {
            return match name {
                "amp" => Some('&'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "sol" => Some('/'),
                "num" => Some('#'),
                "quest" => Some('?'),
                "percnt" => Some('%'),
                _ => None,
            };
        }
    };
    char::from_u32(code)
}

/// The first index from `at` whose byte satisfies `stop`, or the end.
fn scan(bytes: &[u8], at: usize, stop: impl Fn(u8) -> bool) -> usize {
    bytes
        .get(at..)
        .and_then(|rest| rest.iter().position(|&b| stop(b)))
        .map_or(bytes.len(), |offset| at + offset)
}

fn find(bytes: &[u8], at: usize, needle: &[u8]) -> Option<usize> {
    bytes
        .get(at..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|offset| at + offset)
}

fn find_ignoring_case(bytes: &[u8], at: usize, needle: &[u8]) -> Option<usize> {
    bytes
        .get(at..)?
        .windows(needle.len())
        .position(|w| w.eq_ignore_ascii_case(needle))
        .map(|offset| at + offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(html: &str) -> Vec<(String, String)> {
        attributes(html)
            .into_iter()
            .map(|a| (a.name, a.value))
            .collect()
    }

    fn pair(name: &str, value: &str) -> (String, String) {
        (name.to_owned(), value.to_owned())
    }

    #[test]
    fn reads_double_single_and_unquoted_values_in_any_case() {
        let html = r#"<A HREF="a.html">x</a><img Src='b.png' alt=x><link href=c.css>"#;
        assert_eq!(
            pairs(html),
            [
                pair("href", "a.html"),
                pair("src", "b.png"),
                pair("alt", "x"),
                pair("href", "c.css"),
            ]
        );
    }

    #[test]
    fn reads_spaces_around_equals_bare_names_and_self_closing_tags() {
        let html = "<input disabled src = 'a b.png'/><br/><img\nsrc=\"c.png\"\n/>";
        assert_eq!(
            pairs(html),
            [
                pair("disabled", ""),
                pair("src", "a b.png"),
                pair("src", "c.png"),
            ]
        );
    }

    #[test]
    fn text_comments_doctypes_and_raw_text_hold_no_attributes() {
        let html = concat!(
            "<!DOCTYPE html>href=\"text.css\" a < b\n",
            "<!-- <img src=\"commented.png\"> -->",
            "<script>var s = '<img src=\"script.png\">';</script>",
            "<STYLE>a::after { content: '<a href=style.css>' }</STYLE>",
            "<title><a href=title.html></title>",
            "</p><img src=after.png>",
        );
        assert_eq!(pairs(html), [pair("src", "after.png")]);
    }

    #[test]
    fn script_attributes_count_but_not_its_body() {
        let html = "<script src=app.js></SCRIPT ><a href=b.html>";
        assert_eq!(pairs(html), [pair("src", "app.js"), pair("href", "b.html")]);
    }

    #[test]
    fn decodes_character_references_in_values() {
        let html = "<a href=\"a&amp;b&#47;c&#x2e;html?x=1&y\">";
        assert_eq!(pairs(html), [pair("href", "a&b/c.html?x=1&y")]);
    }

    #[test]
    fn survives_unterminated_markup() {
        for html in ["<a href=\"x", "<a href=", "<!-- x", "<script>x", "<", "<a"] {
            let _ = attributes(html);
        }
        assert_eq!(pairs("<img src='x.png"), [pair("src", "x.png")]);
    }

    #[test]
    fn keeps_multibyte_text_intact() {
        let html = "<p>é ü <img src=\"ñ/ö.png\" alt='日本'>";
        assert_eq!(pairs(html), [pair("src", "ñ/ö.png"), pair("alt", "日本")]);
    }
}
