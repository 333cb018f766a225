//! Korean particles whose form depends on the last sound of the word before
//! them (은/는, 이/가, 을/를, 과/와, 으로/로).

/// Whether the word ends in a consonant (a Hangul syllable with a final
/// consonant, or a digit or Latin letter read with one). `None` when the
/// last character says nothing (punctuation, an empty word).
pub fn ends_in_consonant(word: &str) -> Option<bool> {
    let last = word.trim_end().chars().last()?;
    match last {
        '가'..='힣' => {
            // The final consonant's index in the syllable block; 0 is none.
            let final_consonant = (last as u32 - 0xAC00) % 28;
            Some(final_consonant != 0)
        }
        // Sino-Korean readings: 영 일 이 삼 사 오 육 칠 팔 구.
        '0' | '1' | '3' | '6' | '7' | '8' => Some(true),
        '2' | '4' | '5' | '9' => Some(false),
        // English names read aloud: these letters end in a consonant sound.
        'l' | 'm' | 'n' | 'r' | 'L' | 'M' | 'N' | 'R' => Some(true),
        // A silent final e after l: Google (구글), Apple (애플).
        'e' | 'E' if ends_in_le(word) => Some(true),
        c if c.is_ascii_alphabetic() => Some(false),
        _ => None,
    }
}

/// Whether a Latin word ends in "le", read with a final ㄹ.
fn ends_in_le(word: &str) -> bool {
    let w = word.trim_end().as_bytes();
    w.len() >= 2
        && w[w.len() - 2].eq_ignore_ascii_case(&b'l')
        && w[w.len() - 1].eq_ignore_ascii_case(&b'e')
}

/// Whether the word ends in ㄹ (which takes 로, not 으로).
fn ends_in_rieul(word: &str) -> bool {
    match word.trim_end().chars().last() {
        Some(c @ '가'..='힣') => (c as u32 - 0xAC00) % 28 == 8,
        Some('1' | '7' | '8' | 'l' | 'L') => true,
        Some('e' | 'E') => ends_in_le(word),
        _ => false,
    }
}

/// A particle with two forms: after a consonant, after a vowel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Particle {
    /// 은/는 (topic)
    Topic,
    /// 이/가 (subject)
    Subject,
    /// 을/를 (object)
    Object,
    /// 과/와 (and, with)
    With,
    /// 으로/로 (to, as)
    Towards,
}

impl Particle {
    /// The form that follows `word`; both forms written as `은(는)` when
    /// the word's last sound cannot be told.
    pub fn after(self, word: &str) -> &'static str {
        let (consonant, vowel, both) = match self {
            Particle::Topic => ("은", "는", "은(는)"),
            Particle::Subject => ("이", "가", "이(가)"),
            Particle::Object => ("을", "를", "을(를)"),
            Particle::With => ("과", "와", "과(와)"),
            Particle::Towards => ("으로", "로", "(으)로"),
        };
        if self == Particle::Towards && ends_in_rieul(word) {
            return vowel;
        }
        match ends_in_consonant(word) {
            Some(true) => consonant,
            Some(false) => vowel,
            None => both,
        }
    }
}

/// `word` followed by the right form of `particle`.
pub fn attach(word: &str, particle: Particle) -> String {
    format!("{word}{}", particle.after(word))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hangul_final_consonants_choose_the_form() {
        assert_eq!(attach("서울", Particle::Topic), "서울은");
        assert_eq!(attach("삼성전자", Particle::Topic), "삼성전자는");
        assert_eq!(attach("이순신", Particle::Subject), "이순신이");
        assert_eq!(attach("세종대왕", Particle::Object), "세종대왕을");
        assert_eq!(attach("김구", Particle::Object), "김구를");
        assert_eq!(attach("한국", Particle::With), "한국과");
        assert_eq!(attach("서울", Particle::Towards), "서울로");
        assert_eq!(attach("부산", Particle::Towards), "부산으로");
        assert_eq!(attach("대구", Particle::Towards), "대구로");
    }

    #[test]
    fn digits_latin_and_unknowns() {
        assert_eq!(attach("2002", Particle::Topic), "2002는");
        assert_eq!(attach("G20", Particle::Topic), "G20은");
        assert_eq!(attach("FC 서울", Particle::Subject), "FC 서울이");
        assert_eq!(attach("Google", Particle::Topic), "Google은");
        assert_eq!(attach("Apple", Particle::Towards), "Apple로");
        assert_eq!(attach("Ubuntu", Particle::Towards), "Ubuntu로");
        assert_eq!(attach("KBS", Particle::Topic), "KBS는");
        assert_eq!(attach("(주)", Particle::Topic), "(주)은(는)");
        assert_eq!(ends_in_consonant(""), None);
    }
}
