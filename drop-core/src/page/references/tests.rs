use std::path::Path;

use super::*;

/// A folder holding `files` (path, content) and its manifest text.
fn folder(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (rel, content) in files {
        write(dir.path(), rel, content);
    }
    dir
}

fn write(root: &Path, rel: &str, content: &str) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
}

fn scan(dir: &Path, manifest: &str) -> Vec<Uncovered> {
    scan_references(dir, &Manifest::parse(manifest).unwrap()).0
}

fn add(from: &str, reference: &str, target: &str, exists: bool, line: &str) -> Uncovered {
    Uncovered {
        from: from.into(),
        reference: reference.into(),
        target: target.into(),
        exists,
        fix: Fix::AddLine(line.into()),
    }
}

/// (reference, target, line) of each uncovered reference.
fn summary(found: &[Uncovered]) -> Vec<(&str, &str, Option<&str>)> {
    found
        .iter()
        .map(|u| (&*u.reference, &*u.target, u.fix.manifest_line()))
        .collect()
}

const SITE_INDEX: &str = r##"<!doctype html>
<link rel="stylesheet" href="css/site.css">
<img src="img/logo.png" srcset="img/logo@2x.png 2x, img/icons/a.png 3x">
<a href="https://x">x</a> <a href="#top">top</a> <a href="mailto:me@example.com">me</a>
<a href="./about.html">about</a> <a href="sub/">sub</a>
<link rel="stylesheet" href="/abs.css">
<script src="missing.js"></script>
"##;

fn site() -> tempfile::TempDir {
    folder(&[
        ("index.html", SITE_INDEX),
        ("about.html", "<a href=index.html>home</a>"),
        ("css/site.css", ""),
        ("img/logo.png", ""),
        ("img/logo@2x.png", ""),
        ("img/icons/a.png", ""),
        ("sub/index.html", ""),
        ("abs.css", ""),
    ])
}

#[test]
fn reports_each_unlisted_local_reference_with_the_line_that_lists_it() {
    let dir = site();
    let found = scan(dir.path(), "index.html\nabout.html\n");
    let abs = Uncovered {
        from: "index.html".into(),
        reference: "/abs.css".into(),
        target: "abs.css".into(),
        exists: true,
        fix: Fix::MakeRelative {
            relative: "abs.css".into(),
            line: Some("abs.css".into()),
        },
    };
    let expected = vec![
        add("index.html", "css/site.css", "css/site.css", true, "css/**"),
        add("index.html", "img/logo.png", "img/logo.png", true, "img/**"),
        add(
            "index.html",
            "img/logo@2x.png",
            "img/logo@2x.png",
            true,
            "img/**",
        ),
        add(
            "index.html",
            "img/icons/a.png",
            "img/icons/a.png",
            true,
            "img/**",
        ),
        add("index.html", "sub/", "sub/index.html", true, "sub/**"),
        abs,
        Uncovered {
            from: "index.html".into(),
            reference: "missing.js".into(),
            target: "missing.js".into(),
            exists: false,
            fix: Fix::Missing,
        },
    ];
    assert_eq!(found, expected);
    assert_eq!(
        lines_to_add(&found),
        ["css/**", "img/**", "sub/**", "abs.css"],
        "no line for a file that does not exist"
    );
}

#[test]
fn the_suggested_lines_leave_only_what_no_line_can_fix() {
    let dir = site();
    let found = scan(dir.path(), "index.html\nabout.html\n");
    let fixed = format!(
        "index.html\nabout.html\n{}\n",
        lines_to_add(&found).join("\n")
    );
    let after = scan(dir.path(), &fixed);
    assert_eq!(
        summary(&after),
        [
            ("/abs.css", "abs.css", None),
            ("missing.js", "missing.js", None)
        ]
    );
    assert!(matches!(
        &after[0].fix,
        Fix::MakeRelative { relative, line: None } if relative == "abs.css"
    ));
}

#[test]
fn listed_references_report_nothing() {
    let dir = folder(&[
        ("index.html", "<link href=css/a.css><a href=blog/post.html>"),
        (
            "blog/post.html",
            "<link href='../css/a.css'><a href=../>up</a>",
        ),
        ("css/a.css", ""),
    ]);
    assert_eq!(scan(dir.path(), "*.html\nblog/\ncss/**\n"), []);
}

#[test]
fn pages_the_manifest_does_not_serve_are_not_read() {
    let dir = folder(&[
        ("index.html", "<p>nothing linked</p>"),
        ("drafts/next.html", "<img src=draft.png>"),
        ("notes.htm", "<img src=notes.png>"),
        ("other.html", "<img src=other.png>"),
    ]);
    assert_eq!(scan(dir.path(), "index.html\n"), []);
}

#[test]
fn references_resolve_from_the_folder_of_their_page() {
    let dir = folder(&[
        (
            "blog/post.html",
            "<img src=img/a.png><link href='../css/a.css'><a href='/x.css?v=2#t'>\
             <a href=sub>folder</a><img src='b%20c.png'>",
        ),
        ("blog/sub/index.html", ""),
        ("blog/img/a.png", ""),
        ("css/a.css", ""),
        ("x.css", ""),
        ("blog/b c.png", ""),
    ]);
    let found = scan(dir.path(), "blog/post.html\n");
    assert_eq!(
        summary(&found),
        [
            ("img/a.png", "blog/img/a.png", Some("blog/**")),
            ("../css/a.css", "css/a.css", Some("css/**")),
            ("/x.css?v=2#t", "x.css", Some("x.css")),
            ("sub", "blog/sub/index.html", Some("blog/**")),
            ("b%20c.png", "blog/b c.png", Some("blog/**")),
        ]
    );
    assert!(matches!(
        &found[2].fix,
        Fix::MakeRelative { relative, .. } if relative == "../x.css?v=2#t"
    ));
}

#[test]
fn a_target_is_reported_once_from_the_first_page_that_asks() {
    let dir = folder(&[
        ("index.html", "<link href=css/a.css><link href=/b.css>"),
        ("about.html", "<link href=./css/a.css><link href=/b.css>"),
    ]);
    let found = scan(dir.path(), "*.html\nb.css\n");
    let seen: Vec<(&str, &str)> = found.iter().map(|u| (&*u.from, &*u.target)).collect();
    // Each page must fix its own root-absolute reference.
    assert_eq!(
        seen,
        [
            ("about.html", "css/a.css"),
            ("about.html", "b.css"),
            ("index.html", "b.css"),
        ]
    );
}

#[test]
fn what_no_manifest_line_can_serve_is_not_reported() {
    let outside = folder(&[("x.css", ""), ("secret.txt", "")]);
    let dir = folder(&[
        (
            "index.html",
            "<link href=.env><link href=.drop-publish><link href=.git/config>\
             <link href=.ENV~><link href=conf/.env.local><link href=../x.css>\
             <link href=linked/x.css><link href=secret.txt><a href='a//b.html'>",
        ),
        (".env", "KEY=1"),
        (".git/config", ""),
    ]);
    std::os::unix::fs::symlink(outside.path(), dir.path().join("linked")).unwrap();
    let secret = outside.path().join("secret.txt");
    std::os::unix::fs::symlink(secret, dir.path().join("secret.txt")).unwrap();
    assert_eq!(scan(dir.path(), "index.html\n"), []);
}

#[test]
fn other_sites_this_page_and_placeholders_are_left_alone() {
    for raw in [
        "https://x.example/a.css",
        "HTTP://x",
        "mailto:me@example.com",
        "tel:+1",
        "data:image/png;base64,AAAA",
        "javascript:void(0)",
        "//cdn.example/a.js",
        "\\\\cdn.example/a.js",
        "#top",
        "?page=2",
        "",
        "  ",
        "{{ asset }}/a.css",
        "${base}/a.css",
        "<%= url %>",
        "{% static 'a.css' %}",
    ] {
        assert_eq!(local_path(raw), None, "{raw:?}");
    }
    assert_eq!(local_path(" a.css?v=1 "), Some(("a.css".into(), false)));
    assert_eq!(
        local_path("\\img\\a.png"),
        Some(("/img/a.png".into(), true))
    );
}

#[test]
fn links_that_climb_out_of_the_folder_are_not_resolved() {
    assert_eq!(resolve("", "../a.css"), None);
    assert_eq!(resolve("blog", "../../a.css"), None);
    assert_eq!(resolve("blog", "%2E%2e/a.css").as_deref(), Some("a.css"));
    assert_eq!(resolve("blog", "..").as_deref(), Some(""));
    assert_eq!(resolve("a b", "c.css").as_deref(), Some("a%20b/c.css"));
    assert_eq!(resolve("blog", "/x/./y/").as_deref(), Some("x/y/"));
}

#[test]
fn root_absolute_references_become_relative_to_their_page() {
    assert_eq!(relative_from("index.html", "/"), "./");
    assert_eq!(relative_from("index.html", "/?q=1"), "./?q=1");
    assert_eq!(relative_from("index.html", "/a:b.html"), "./a:b.html");
    assert_eq!(relative_from("index.html", "/css/a.css"), "css/a.css");
    assert_eq!(
        relative_from("a/b/c.html", "/css/a.css#x"),
        "../../css/a.css#x"
    );
}

#[test]
fn srcset_yields_each_candidate_url() {
    // As browsers read it: a URL runs to whitespace, so `c.png,d.png` is one.
    assert_eq!(srcset_urls("a.png 1x, b.png 2x"), ["a.png", "b.png"]);
    assert_eq!(
        srcset_urls("a,b.png 1x,c.png,d.png"),
        ["a,b.png", "c.png,d.png"]
    );
    assert_eq!(
        srcset_urls(" data:image/png;base64,AA 1x , e.png 480w "),
        ["data:image/png;base64,AA", "e.png"]
    );
    assert!(srcset_urls(" , ").is_empty());
}

#[test]
fn poster_xlink_and_srcset_count_and_base_href_skips_the_page() {
    let refs = references_in(
        "<video poster=p.jpg></video><svg><use xlink:href='i.svg#a'/></svg>\
         <img srcset='s.png 2x'><a title=t.png>",
    );
    assert_eq!(refs, ["p.jpg", "i.svg#a", "s.png"]);
    assert!(references_in("<base href=https://cdn.example/><img src=a.png>").is_empty());
}

#[test]
fn suggested_lines_match_odd_names() {
    for target in [
        "a#b.png",
        "we[1].css",
        " lead.css",
        "trail.css ",
        "x*y?.js",
        "{a,b}.js",
        "back\\slash.js",
        "dir#1/a.png",
        "[x]/a.png",
    ] {
        let line = manifest_line(target);
        let manifest = Manifest::parse(&line).unwrap();
        assert!(manifest.allows(target), "{target:?} by {line:?}");
    }
    assert!(
        !Manifest::parse(&manifest_line("x*y.js"))
            .unwrap()
            .allows("xay.js")
    );
}

#[test]
fn reads_at_most_the_start_of_a_huge_page() {
    let padding = "<p>".repeat(MAX_SCANNED_BYTES as usize / 3 + 1);
    let dir = folder(&[
        (
            "index.html",
            &format!("<img src=early.png>{padding}<img src=late.png>"),
        ),
        ("early.png", ""),
        ("late.png", ""),
    ]);
    let found = scan(dir.path(), "index.html\n");
    assert_eq!(
        summary(&found),
        [("early.png", "early.png", Some("early.png"))]
    );
}

#[test]
fn stops_after_the_most_pages_it_reads() {
    let dir = tempfile::tempdir().unwrap();
    for n in 0..=MAX_SCANNED_PAGES {
        write(
            dir.path(),
            &format!("p{n:05}.html"),
            &format!("<img src=i{n:05}.png>"),
        );
    }
    let found = scan(dir.path(), "*.html\n");
    assert_eq!(found.len(), MAX_SCANNED_PAGES);
    assert_eq!(
        found.last().unwrap().target,
        format!("i{:05}.png", MAX_SCANNED_PAGES - 1)
    );
}

#[test]
fn symlinked_folders_and_fifos_are_not_read() {
    let outside = folder(&[("x.html", "<img src=y.png>")]);
    let dir = folder(&[("index.html", "")]);
    std::os::unix::fs::symlink(outside.path(), dir.path().join("linked")).unwrap();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        dir.path().join("pipe.html"),
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .unwrap();
    assert_eq!(scan(dir.path(), "**/*.html\n"), []);
}

#[test]
fn a_symlinked_page_inside_the_folder_is_read() {
    let dir = folder(&[("real/page.html", "<img src=../pic.png>"), ("pic.png", "")]);
    std::os::unix::fs::symlink("real/page.html", dir.path().join("page.html")).unwrap();
    let found = scan(dir.path(), "page.html\nreal/**\n");
    // Read twice (as the link and as itself); `../pic.png` from the link climbs out.
    assert_eq!(
        summary(&found),
        [("../pic.png", "pic.png", Some("pic.png"))]
    );
    assert_eq!(found[0].from, "real/page.html");
}

#[test]
fn a_listed_symlink_to_an_unlisted_file_asks_for_its_destination() {
    let dir = folder(&[
        ("index.html", "<img src=logo.png>"),
        ("assets/logo.png", ""),
    ]);
    std::os::unix::fs::symlink("assets/logo.png", dir.path().join("logo.png")).unwrap();
    let found = scan(dir.path(), "index.html\nlogo.png\n");
    assert_eq!(
        found,
        [add(
            "index.html",
            "logo.png",
            "assets/logo.png",
            true,
            "assets/**"
        )]
    );
}

/// The files a folder page serves are what its manifest lists, never the
/// private ones, in name order.
#[test]
fn served_files_are_what_the_manifest_lists() {
    let dir = folder(&[
        ("index.html", ""),
        ("css/site.css", ""),
        ("css/old.txt", ""),
        (".env", "SECRET=1"),
        ("notes.md", ""),
    ]);
    let outside = folder(&[("secret.css", "")]);
    std::os::unix::fs::symlink(
        outside.path().join("secret.css"),
        dir.path().join("out.css"),
    )
    .unwrap();
    std::os::unix::fs::symlink("css/site.css", dir.path().join("link.css")).unwrap();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        dir.path().join("pipe.css"),
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .unwrap();
    let manifest = Manifest::parse("index.html\n*.css\ncss/*.css\n.env\n").unwrap();
    let served = served_files(dir.path(), &manifest);
    assert_eq!(
        served.files,
        vec!["css/site.css", "index.html", "link.css"],
        "no link out of the folder, no FIFO"
    );
    assert!(served.complete);
}
