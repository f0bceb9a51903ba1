//! A link as a QR code drawn in the terminal, for a phone to scan.

use std::io::IsTerminal;

use qrcode::render::unicode::Dense1x2;
use qrcode::{EcLevel, QrCode};

/// Why a link cannot be drawn as a QR code.
#[derive(Debug, thiserror::Error)]
pub enum QrError {
    /// More data than the largest QR code (version 40) holds.
    #[error(
        "the link is {len} bytes, too long for a QR code (they hold about 2,900 bytes of a link); share the link as text instead"
    )]
    TooLong {
        /// The link's length in bytes.
        len: usize,
    },
    /// Any other refusal of the encoder; for a byte string it has none today.
    #[error("could not draw the link as a QR code; share the link as text instead")]
    Encode {
        /// What the encoder said.
        #[source]
        source: qrcode::types::QrError,
    },
}

/// The URL as a QR code drawn with Unicode half blocks: one character a
/// module across, two modules a character row, inside the 4-module quiet
/// zone. Every line ends with `'\n'` and has the same number of characters.
///
/// Light modules, the quiet zone included, are drawn as blocks (`█`, `▀`,
/// `▄`) and dark modules as spaces, so the code's light colour is the
/// terminal's foreground. On a dark theme, which most terminals use, that is
/// the dark-on-light code every scanner reads. On a light theme it shows
/// inverted, which many phone scanners also read but not all. Because the
/// quiet zone is drawn, no line starts or ends with a space that a terminal
/// or a copy could trim. The last character row's lower half lies below the
/// code and is left to the background. The blocks are East Asian
/// "ambiguous" width: a terminal set to draw those double wide distorts the
/// code.
///
/// The error correction level is L (about 7% of the code may be lost): a
/// screen is not smudged or torn like paper, and L keeps the code smallest.
/// A ~100-character quick-tunnel link then needs version 5, 45 columns with
/// the quiet zone, where level M would need 49.
pub fn render(url: &str) -> Result<String, QrError> {
    let code =
        QrCode::with_error_correction_level(url, EcLevel::L).map_err(|source| match source {
            qrcode::types::QrError::DataTooLong => QrError::TooLong { len: url.len() },
            source => QrError::Encode { source },
        })?;
    Ok(draw(&code))
}

/// The code as `drop qr` and `drop add --qr` print it: on a terminal,
/// drawn white on black whatever the theme, so that it is the dark-on-light
/// code every scanner reads; into a pipe or file, plain text.
pub fn for_stdout(url: &str) -> Result<String, QrError> {
    let code = render(url)?;
    if !std::io::stdout().is_terminal() {
        return Ok(code);
    }
    Ok(code
        .lines()
        .map(|line| format!("\x1b[97;40m{line}\x1b[0m\n"))
        .collect())
}

/// The code and its quiet zone, two module rows a line, by the encoder's
/// own Unicode renderer with its colours swapped: light modules are the
/// blocks (see [`render`]).
fn draw(code: &QrCode) -> String {
    let mut drawn = code
        .render::<Dense1x2>()
        .dark_color(Dense1x2::Light)
        .light_color(Dense1x2::Dark)
        .quiet_zone(true)
        .module_dimensions(1, 1)
        .build();
    drawn.push('\n');
    drawn
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pixels a side for each module handed to the decoder, as a camera sees
    /// each module as several pixels.
    const PIXELS_PER_MODULE: usize = 4;

    /// rqrr's number for level L: the two format bits, `01`.
    const RQRR_LEVEL_L: u16 = 1;

    /// The modules a rendering shows, light as `true`: two rows a line.
    fn modules(text: &str) -> Vec<Vec<bool>> {
        let mut rows = Vec::new();
        for line in text.lines() {
            let (top, bottom) = line
                .chars()
                .map(|c| match c {
                    '█' => (true, true),
                    '▀' => (true, false),
                    '▄' => (false, true),
                    ' ' => (false, false),
                    other => panic!("{other:?} is not a half block"),
                })
                .unzip();
            rows.push(top);
            rows.push(bottom);
        }
        rows
    }

    /// The text and error correction level a QR decoder reads from a
    /// rendering on a dark terminal: foreground light, background dark.
    fn scan(text: &str) -> (String, u16) {
        let rows = modules(text);
        let width = rows[0].len() * PIXELS_PER_MODULE;
        let height = rows.len() * PIXELS_PER_MODULE;
        let mut image =
            rqrr::PreparedImage::prepare_from_greyscale(width, height, |x, y| {
                match rows[y / PIXELS_PER_MODULE][x / PIXELS_PER_MODULE] {
                    true => 255,
                    false => 0,
                }
            });
        let grids = image.detect_grids();
        assert_eq!(grids.len(), 1, "one QR code in:\n{text}");
        let (meta, content) = grids[0].decode().expect("the code decodes");
        (content, meta.ecc_level)
    }

    #[test]
    fn a_short_link_scans_back() {
        let url = "https://example.trycloudflare.com";
        let (content, level) = scan(&render(url).unwrap());
        assert_eq!(content, url);
        assert_eq!(level, RQRR_LEVEL_L);
    }

    #[test]
    fn a_long_quick_tunnel_link_scans_back() {
        let url = "https://tender-violet-mountain-frequently.trycloudflare.com/p/report-2026.pdf?key=3f9a1c2e7b8d4a6f";
        assert!((95..=105).contains(&url.len()), "{}", url.len());
        let text = render(url).unwrap();
        assert_eq!(scan(&text).0, url);
        // Version 5 (37 modules) and the quiet zone: fits 80 columns.
        assert_eq!(text.lines().next().unwrap().chars().count(), 45);
    }

    #[test]
    fn lines_are_equally_wide_and_framed_by_the_quiet_zone() {
        let text = render("https://example.trycloudflare.com").unwrap();
        assert!(text.ends_with('\n'));
        let lines: Vec<&str> = text.lines().collect();
        let width = lines[0].chars().count();
        // Four light module rows on top: the first two lines are all block.
        assert!(lines[..2].iter().all(|l| l.chars().all(|c| c == '█')));
        for line in &lines {
            assert_eq!(line.chars().count(), width, "{line:?}");
            for edge in [line.chars().next(), line.chars().last()] {
                assert!(matches!(edge, Some('█' | '▀')), "{line:?}");
            }
        }
        // The odd last module row is the bottom of the quiet zone.
        assert!(lines.last().unwrap().chars().all(|c| c == '▀'));
    }

    #[test]
    fn a_5000_byte_link_is_too_long() {
        let url = format!("https://example.com/{}", "a".repeat(5000 - 20));
        let error = render(&url).unwrap_err();
        assert!(matches!(error, QrError::TooLong { len: 5000 }), "{error:?}");
        assert!(error.to_string().contains("share the link as text"));
    }
}
