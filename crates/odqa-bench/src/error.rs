use std::path::PathBuf;

/// Errors of question loading, benchmarking and report writing.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// A file could not be read, written or created.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A question file is not valid JSON.
    #[error("{}: not valid JSON: {source}", path.display())]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    /// A question file is JSON but not in a supported shape; `at` names the
    /// entry and field (e.g. `data[3].paragraphs[0].qas[2].question`).
    #[error("{}: {at}: {message}", path.display())]
    Format {
        path: PathBuf,
        at: String,
        message: String,
    },
    /// A question file holds no questions.
    #[error("{}: no questions in file", path.display())]
    Empty { path: PathBuf },
    /// A question has no non-empty answer string.
    #[error("{}: question {id:?} ({at}) has no non-empty answer", path.display())]
    NoAnswers {
        path: PathBuf,
        id: String,
        at: String,
    },
    /// The benchmark options are unusable.
    #[error("invalid benchmark options: {0}")]
    InvalidOptions(String),
    /// The benchmark was given no questions.
    #[error("no questions to benchmark")]
    NoQuestions,
    /// The caller's search closure failed on a question.
    #[error("search failed for question {id:?}: {message}")]
    Search { id: String, message: String },
    /// Writing the per-question hits export failed.
    #[error("writing hits for question {id:?}: {source}")]
    HitsWrite {
        id: String,
        #[source]
        source: std::io::Error,
    },
    /// Serializing a report or hits line failed.
    #[error("serializing {what}: {source}")]
    Serialize {
        what: String,
        #[source]
        source: serde_json::Error,
    },
    /// A file given as a retrieval result is not one.
    #[error("{} is not a retrieval result", path.display())]
    NotAResult {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    /// Drawing the plot failed.
    #[error("{}: plotting failed: {message}", path.display())]
    Plot { path: PathBuf, message: String },
    /// A file the benchmark writes as it goes could not be created.
    #[error("creating {}", path.display())]
    Create {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Reading with the gold paragraph needs one for every question.
    #[error("question {id:?} in {} has no context: bench mrc needs gold paragraphs", path.display())]
    NoContext { id: String, path: PathBuf },
    /// The corpus the throughput windows are cut from could not be tokenized.
    #[error("tokenizing {}: {message}", path.display())]
    Tokenize { path: PathBuf, message: String },
    /// The corpus holds too little text for one window.
    #[error("{} has fewer than {tokens} tokens", path.display())]
    ShortCorpus { path: PathBuf, tokens: usize },
    /// Reading the corpus failed.
    #[error(transparent)]
    Corpus(#[from] odqa_corpus::CorpusError),
    /// A model failed to run.
    #[error(transparent)]
    Model(#[from] odqa_encoder::EncoderError),
    /// A dense-index search failed.
    #[error(transparent)]
    Dense(#[from] odqa_dense::DenseError),
}
