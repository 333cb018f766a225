use std::path::Path;

use serde_json::{Map, Value};

use crate::BenchError;

/// One benchmark question with its gold answer strings.
///
/// `answers` is deduplicated (first occurrence kept) and holds no empty
/// strings; it is never empty for questions returned by [`load_questions`].
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Question {
    pub id: String,
    pub question: String,
    pub answers: Vec<String>,
    /// The gold paragraph, where the set gives one (reading benchmarks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    /// The article title, where the set gives one (KorQuAD writes `_` for spaces).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
}

/// Loads a question set, detecting the format from the JSON top level:
///
/// * an object with `data` — SQuAD v1 (KorQuAD):
///   `{"data":[{"title","paragraphs":[{"context","qas":[{"id","question","answers":[{"text","answer_start"}]}]}]}]}`
/// * a list — the KLUE-MRC open-domain format:
///   `[{"id","title","question","context","answers":{"text":[..],"answer_start":[..]}}]`
///   (`answers` may also be a list of strings or of `{"text"}` objects).
///
/// Answers are deduplicated keeping order and empty (or whitespace-only)
/// answer strings are dropped. Errors name the file and the entry/field:
/// unreadable file, invalid JSON, unsupported shape, a missing or mistyped
/// field, a question without any answer (named by its id), or no questions.
pub fn load_questions(path: &Path) -> Result<Vec<Question>, BenchError> {
    let bytes = std::fs::read(path).map_err(|source| BenchError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let root: Value = serde_json::from_slice(&bytes).map_err(|source| BenchError::Json {
        path: path.to_path_buf(),
        source,
    })?;
    let loader = Loader { path };
    let questions = match &root {
        Value::Array(items) => loader.klue_list(items)?,
        Value::Object(obj) if obj.contains_key("data") => loader.squad(obj)?,
        Value::Object(_) => {
            return Err(loader.format(
                "top level",
                "expected a SQuAD object with a \"data\" field or a list of questions",
            ))
        }
        other => {
            return Err(loader.format(
                "top level",
                format!(
                    "expected a SQuAD object or a list of questions, found {}",
                    kind(other)
                ),
            ))
        }
    };
    if questions.is_empty() {
        return Err(BenchError::Empty {
            path: path.to_path_buf(),
        });
    }
    Ok(questions)
}

struct Loader<'a> {
    path: &'a Path,
}

impl Loader<'_> {
    fn format(&self, at: impl Into<String>, message: impl Into<String>) -> BenchError {
        BenchError::Format {
            path: self.path.to_path_buf(),
            at: at.into(),
            message: message.into(),
        }
    }

    fn object<'v>(&self, v: &'v Value, at: &str) -> Result<&'v Map<String, Value>, BenchError> {
        v.as_object()
            .ok_or_else(|| self.format(at, format!("expected an object, found {}", kind(v))))
    }

    fn field<'v>(
        &self,
        obj: &'v Map<String, Value>,
        name: &str,
        at: &str,
    ) -> Result<&'v Value, BenchError> {
        obj.get(name)
            .ok_or_else(|| self.format(format!("{at}.{name}"), "missing field"))
    }

    fn array<'v>(
        &self,
        obj: &'v Map<String, Value>,
        name: &str,
        at: &str,
    ) -> Result<&'v Vec<Value>, BenchError> {
        let v = self.field(obj, name, at)?;
        v.as_array().ok_or_else(|| {
            self.format(
                format!("{at}.{name}"),
                format!("expected a list, found {}", kind(v)),
            )
        })
    }

    fn string(&self, obj: &Map<String, Value>, name: &str, at: &str) -> Result<String, BenchError> {
        let v = self.field(obj, name, at)?;
        v.as_str().map(str::to_owned).ok_or_else(|| {
            self.format(
                format!("{at}.{name}"),
                format!("expected a string, found {}", kind(v)),
            )
        })
    }

    /// Ids may be strings or integers.
    fn id(&self, obj: &Map<String, Value>, at: &str) -> Result<String, BenchError> {
        let v = self.field(obj, "id", at)?;
        let id = match v {
            Value::String(s) => s.clone(),
            Value::Number(n) if n.is_i64() || n.is_u64() => n.to_string(),
            other => {
                return Err(self.format(
                    format!("{at}.id"),
                    format!("expected a string, found {}", kind(other)),
                ))
            }
        };
        if id.trim().is_empty() {
            return Err(self.format(format!("{at}.id"), "empty id"));
        }
        Ok(id)
    }

    fn question(&self, obj: &Map<String, Value>, at: &str) -> Result<Question, BenchError> {
        let id = self.id(obj, at)?;
        let question = self.string(obj, "question", at)?;
        if question.trim().is_empty() {
            return Err(self.format(
                format!("{at}.question"),
                format!("question {id:?} has empty question text"),
            ));
        }
        let answers_at = format!("{at}.answers");
        let raw = self.answer_texts(self.field(obj, "answers", at)?, &answers_at)?;
        let mut answers: Vec<String> = Vec::with_capacity(raw.len());
        for a in raw {
            if !a.trim().is_empty() && !answers.contains(&a) {
                answers.push(a);
            }
        }
        if answers.is_empty() {
            return Err(BenchError::NoAnswers {
                path: self.path.to_path_buf(),
                id,
                at: at.to_owned(),
            });
        }
        let optional = |name: &str| obj.get(name).and_then(Value::as_str).map(str::to_owned);
        Ok(Question {
            id,
            question,
            answers,
            context: optional("context"),
            title: optional("title"),
        })
    }

    /// Accepts `{"text": [..]}`, `[{"text": ..}]` or `["..", ..]`.
    fn answer_texts(&self, v: &Value, at: &str) -> Result<Vec<String>, BenchError> {
        match v {
            Value::Object(obj) => {
                let texts = self.array(obj, "text", at)?;
                texts
                    .iter()
                    .enumerate()
                    .map(|(i, t)| {
                        t.as_str().map(str::to_owned).ok_or_else(|| {
                            self.format(
                                format!("{at}.text[{i}]"),
                                format!("expected a string, found {}", kind(t)),
                            )
                        })
                    })
                    .collect()
            }
            Value::Array(items) => items
                .iter()
                .enumerate()
                .map(|(i, item)| {
                    let item_at = format!("{at}[{i}]");
                    match item {
                        Value::String(s) => Ok(s.clone()),
                        Value::Object(obj) => self.string(obj, "text", &item_at),
                        other => Err(self.format(
                            item_at,
                            format!("expected an answer object or string, found {}", kind(other)),
                        )),
                    }
                })
                .collect(),
            other => Err(self.format(
                at,
                format!(
                    "expected an object with \"text\" or a list of answers, found {}",
                    kind(other)
                ),
            )),
        }
    }

    fn squad(&self, root: &Map<String, Value>) -> Result<Vec<Question>, BenchError> {
        let mut out = Vec::new();
        for (a, article) in self.array(root, "data", "top level")?.iter().enumerate() {
            let at = format!("data[{a}]");
            let article = self.object(article, &at)?;
            for (p, para) in self.array(article, "paragraphs", &at)?.iter().enumerate() {
                let at = format!("data[{a}].paragraphs[{p}]");
                let para = self.object(para, &at)?;
                for (q, qa) in self.array(para, "qas", &at)?.iter().enumerate() {
                    let at = format!("data[{a}].paragraphs[{p}].qas[{q}]");
                    let qa = self.object(qa, &at)?;
                    let mut question = self.question(qa, &at)?;
                    question.context = para
                        .get("context")
                        .and_then(Value::as_str)
                        .map(str::to_owned);
                    question.title = article
                        .get("title")
                        .and_then(Value::as_str)
                        .map(str::to_owned);
                    out.push(question);
                }
            }
        }
        Ok(out)
    }

    fn klue_list(&self, items: &[Value]) -> Result<Vec<Question>, BenchError> {
        items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                let at = format!("[{i}]");
                let obj = self.object(item, &at)?;
                self.question(obj, &at)
            })
            .collect()
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}
