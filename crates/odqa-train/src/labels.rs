//! Where an answer lies in a window, in token positions: thin wrappers over
//! `odqa_reader` (the same mapping relation extraction uses at inference).

use odqa_reader::Window;

pub use odqa_reader::answer_tokens;

/// The window positions `(start, end)` of the answer tokens, when the
/// window holds all of them; `None` when the answer is not (wholly) inside.
pub fn window_label(window: &Window, answer_tokens: (usize, usize)) -> Option<(usize, usize)> {
    window.positions_of(answer_tokens)
}

#[cfg(test)]
mod tests {
    use super::*;
    use odqa_reader::testing::{char_wordpiece_tokenizer, TestStyle};
    use odqa_reader::{WindowConfig, Windower};

    #[test]
    fn labels_point_at_the_answer_in_every_window_that_holds_it() {
        let passage = "서울은 대한민국의 수도이다. 부산은 항구 도시이다. Seoul 2024.";
        let alphabet: String = passage.chars().chain("수도는어디?".chars()).collect();
        let tokenizer = char_wordpiece_tokenizer(&alphabet, TestStyle::Bert).unwrap();
        let config = WindowConfig {
            max_len: 20,
            doc_stride: 4,
            max_query_len: 4,
        };
        let windower = Windower::new(&tokenizer, config).unwrap();
        let tokens = windower.tokenize_passage(0, passage).unwrap();
        for answer in ["대한민국", "부산", "Seoul 2024"] {
            let start = passage.find(answer).unwrap();
            let start = passage[..start].chars().count();
            let range = start..start + answer.chars().count();
            let toks = answer_tokens(&tokens, &range).unwrap();
            let windows = windower.windows("수도는 어디?", &[passage]).unwrap();
            let mut holding = 0;
            for w in &windows {
                if let Some((s, e)) = window_label(w, toks) {
                    holding += 1;
                    let (cs, _) = w.token_char_offsets[s].unwrap();
                    let (_, ce) = w.token_char_offsets[e].unwrap();
                    let text: String = passage.chars().skip(cs).take(ce - cs).collect();
                    assert_eq!(text, answer);
                }
            }
            assert!(holding >= 1, "{answer}");
        }
        assert_eq!(
            answer_tokens(&tokens, &(3..4)),
            None,
            "a space holds no token"
        );
    }
}
