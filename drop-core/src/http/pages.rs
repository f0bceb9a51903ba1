//! drop's own small pages besides the login form, in its style (its
//! stylesheet, its CSP): the one 404 of every dead link.

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::form::LOGIN_CSS_PATH;

    #[test]
    fn the_404_page_fits_a_phone_and_loads_the_login_style() {
        let link = format!("<link rel=\"stylesheet\" href=\"{LOGIN_CSS_PATH}\">");
        assert!(NOT_FOUND_PAGE.contains(&link));
        assert!(NOT_FOUND_PAGE.contains("name=\"viewport\""));
    }
}
