//! Turns the ways people write an ingredient into one lookup key.

/// Lower case, single spaces, no surrounding punctuation, and E-numbers written as `e951`
/// whether they came as "E 951", "e-951", "E.951" or "INS 951".
pub fn normalize(raw: &str) -> String {
    let lowered = raw.to_lowercase();
    let words: Vec<&str> = lowered
        .split(|c: char| c.is_whitespace() || c == '_')
        .map(|word| word.trim_matches(|c: char| !c.is_alphanumeric() && c != '-'))
        .filter(|word| !word.is_empty())
        .collect();
    let joined = words.join(" ");
    e_number(&joined).unwrap_or(joined)
}

/// `e951`, `e150d`, `e160a(ii)`-style codes from their spaced, dashed or INS spellings.
fn e_number(text: &str) -> Option<String> {
    let rest = text
        .strip_prefix("ins")
        .or_else(|| text.strip_prefix('e'))?
        .trim_start_matches([' ', '-', '.']);
    let digits = rest.chars().take_while(char::is_ascii_digit).count();
    let suffix = &rest[digits..];
    let plausible = (3..=4).contains(&digits)
        && suffix.len() <= 1
        && suffix.chars().all(|c| c.is_ascii_lowercase());
    plausible.then(|| format!("e{rest}"))
}

/// The names worth looking up for one listed ingredient: the whole text, the text without a
/// parenthesised part, and the parenthesised part ("colour (e150d)" → both "colour" and "e150d").
pub fn candidates(raw: &str) -> Vec<String> {
    let mut names = vec![normalize(raw)];
    if let (Some(open), Some(close)) = (raw.find('('), raw.rfind(')'))
        && open < close
    {
        let outside = format!("{} {}", &raw[..open], &raw[close + 1..]);
        names.push(normalize(&outside));
        names.push(normalize(&raw[open + 1..close]));
    }
    names.retain(|name| !name.is_empty());
    names.dedup();
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_spacing_and_punctuation_do_not_matter() {
        assert_eq!(normalize("  Sodium   NITRITE, "), "sodium nitrite");
        assert_eq!(normalize("Titanium_Dioxide."), "titanium dioxide");
    }

    #[test]
    fn e_numbers_have_one_spelling() {
        for written in ["E951", "e 951", "E-951", "INS 951", "E.951"] {
            assert_eq!(normalize(written), "e951", "{written}");
        }
        assert_eq!(normalize("E 150d"), "e150d");
        assert_eq!(normalize("egg"), "egg");
    }

    #[test]
    fn a_parenthesised_part_is_looked_up_too() {
        assert_eq!(
            candidates("Colour (E150d)"),
            ["colour e150d", "colour", "e150d"]
        );
        assert_eq!(candidates("sugar"), ["sugar"]);
    }
}
