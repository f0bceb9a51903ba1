//! drop's own small pages besides the login form, in its style (its
//! stylesheet, its CSP): the one 404 of every dead link, and the card a
//! link-preview bot gets of a one-time page.

use crate::auth::form::LOGIN_CSS_PATH;

/// The body of the one 404: what a person sees of a link that never
/// existed, expired or was used, and of any path that is not served. It
/// says those three and never which, so it is the same bytes for all. (A
/// literal, for a `&'static str`: a test checks it links the login
/// stylesheet's path.)
pub const NOT_FOUND_PAGE: &str = "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
<meta name=\"referrer\" content=\"no-referrer\"><title>Link not found</title>\
<link rel=\"stylesheet\" href=\"/_drop/login.css\"></head><body><main>\
<h1>This link does not work</h1>\
<p>It does not exist, it has expired, or it was a one-time link that was already used.</p>\
<p>Ask the person who sent it for a new one.</p></main></body></html>\n";

/// The policy of drop's own pages: their stylesheet and nothing else.
pub(super) const OWN_PAGE_CSP: &str =
    "default-src 'none'; style-src 'self'; frame-ancestors 'none'; base-uri 'none'";

/// What a link-preview bot gets of an unused one-time page: a card with
/// its `title` (the page's name or file name) and nothing of its content.
pub(super) fn preview_card(title: &str) -> String {
    let title = escape(title);
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
<meta name=\"referrer\" content=\"no-referrer\"><title>{title}</title>\
<meta property=\"og:title\" content=\"{title}\">\
<meta property=\"og:description\" content=\"{ONE_TIME}\">\
<link rel=\"stylesheet\" href=\"{LOGIN_CSS_PATH}\"></head><body><main>\
<h1>{title}</h1><p>{ONE_TIME}</p></main></body></html>\n"
    )
}

const ONE_TIME: &str = "A one-time link: it opens once, for the first person who follows it.";

/// `text` safe inside HTML text and double-quoted attributes.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_404_page_fits_a_phone_and_loads_the_login_style() {
        let link = format!("<link rel=\"stylesheet\" href=\"{LOGIN_CSS_PATH}\">");
        assert!(NOT_FOUND_PAGE.contains(&link));
        assert!(NOT_FOUND_PAGE.contains("name=\"viewport\""));
    }

    #[test]
    fn a_card_title_is_escaped() {
        let card = preview_card("<b>\"Q&A\"</b>.html");
        assert!(card.contains("<h1>&lt;b&gt;&quot;Q&amp;A&quot;&lt;/b&gt;.html</h1>"));
        assert!(!card.contains("<b>"));
    }
}
