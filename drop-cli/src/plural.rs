//! Counts in words, singular for one: `1 page`, `2 pages`.

/// `n` things, in the singular or the plural as `n` asks.
pub fn count(n: usize, one: &str, many: &str) -> String {
    match n {
        1 => format!("1 {one}"),
        n => format!("{n} {many}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_singular_for_one_only() {
        assert_eq!(count(1, "page", "pages"), "1 page");
        assert_eq!(count(0, "page", "pages"), "0 pages");
        assert_eq!(
            count(2, "tunnel process", "tunnel processes"),
            "2 tunnel processes"
        );
    }
}
