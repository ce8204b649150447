//! A model directory on disk: where it is, what it contains, and how texts must be
//! prepared for it.
//!
//! A usable directory holds `config.json` (a BERT-family config), `tokenizer.json` and
//! `model.safetensors`; `1_Pooling/config.json` and `sentence_bert_config.json` (as
//! sentence-transformers writes them) are read when present for the pooling mode and the
//! maximum sequence length.

use super::{BertConfig, Error, Pooling};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

/// The default model's directory name under `models/`.
pub const DEFAULT_MODEL: &str = "all-MiniLM-L6-v2";

/// Where the default model lives when neither `--model` nor `PAPERSCOPE_MODEL` says: the
/// first existing `models/all-MiniLM-L6-v2` found in the current directory or one of its
/// parents, then next to the executable or one of its parents (so `target/release/paperscope`
/// finds the repository's `models/`), then the repository this binary was built from.
pub fn default_model_dir() -> PathBuf {
    let rel = Path::new("models").join(DEFAULT_MODEL);
    let mut roots: Vec<PathBuf> = Vec::new();
    if let Ok(cwd) = std::env::current_dir() {
        roots.extend(cwd.ancestors().map(Path::to_path_buf));
    }
    if let Ok(exe) = std::env::current_exe() {
        roots.extend(exe.ancestors().skip(1).map(Path::to_path_buf));
    }
    roots.push(PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    roots
        .iter()
        .map(|r| r.join(&rel))
        .find(|p| p.join("config.json").is_file())
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(rel))
}

/// A validated model directory, with the settings read from it.
#[derive(Debug, Clone)]
pub struct ModelDir {
    pub path: PathBuf,
    /// The directory's name, e.g. `all-MiniLM-L6-v2`; recorded in index manifests.
    pub name: String,
    pub pooling: Pooling,
    /// Longest token sequence fed to the model, `[CLS]`/`[SEP]` included.
    pub max_tokens: usize,
    /// Parsed `config.json`, shared by every forward pass.
    pub config: BertConfig,
}

#[derive(Deserialize)]
struct PoolingConfig {
    #[serde(default)]
    pooling_mode_cls_token: bool,
    #[serde(default)]
    pooling_mode_mean_tokens: bool,
}

#[derive(Deserialize)]
struct SentenceBertConfig {
    max_seq_length: Option<usize>,
}

impl ModelDir {
    /// Checks that `path` holds a loadable model and reads its settings.
    ///
    /// # Errors
    /// [`Error::ModelDir`] naming the path, what is wrong, and the command that fixes it.
    pub fn open(path: &Path) -> Result<ModelDir, Error> {
        let bad = |what: String| Error::ModelDir {
            path: path.to_path_buf(),
            what,
        };
        if !path.is_dir() {
            return Err(bad("directory not found".into()));
        }
        for f in ["config.json", "tokenizer.json", "model.safetensors"] {
            if !path.join(f).is_file() {
                return Err(bad(format!("{f} missing")));
            }
        }
        let config_path = path.join("config.json");
        let config_text =
            fs::read_to_string(&config_path).map_err(|e| bad(format!("config.json: {e}")))?;
        let config =
            BertConfig::from_json(&config_text).map_err(|e| bad(format!("config.json: {e}")))?;
        let pooling = match path.join("1_Pooling/config.json") {
            p if p.is_file() => {
                let pc: PoolingConfig = read_json(&p).map_err(bad)?;
                match (pc.pooling_mode_mean_tokens, pc.pooling_mode_cls_token) {
                    (true, _) => Pooling::Mean,
                    (false, true) => Pooling::Cls,
                    (false, false) => {
                        return Err(bad(
                            "1_Pooling/config.json: only mean and cls pooling are supported".into(),
                        ))
                    }
                }
            }
            _ => Pooling::Mean,
        };
        let max_tokens = match path.join("sentence_bert_config.json") {
            p if p.is_file() => {
                read_json::<SentenceBertConfig>(&p)
                    .map_err(bad)?
                    .max_seq_length
            }
            _ => None,
        }
        .unwrap_or(512)
        .min(config.max_position_embeddings);
        let name = path
            .canonicalize()
            .unwrap_or_else(|_| path.to_path_buf())
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "model".into());
        Ok(ModelDir {
            path: path.to_path_buf(),
            name,
            pooling,
            max_tokens,
            config,
        })
    }

    pub fn weights_path(&self) -> PathBuf {
        self.path.join("model.safetensors")
    }

    pub fn tokenizer_path(&self) -> PathBuf {
        self.path.join("tokenizer.json")
    }

    /// sha256 of `model.safetensors`, hex. Identifies the weights in index manifests, so
    /// an index is never queried with vectors from another model.
    pub fn weights_sha256(&self) -> Result<String, Error> {
        let path = self.weights_path();
        let io = |source| Error::Io {
            path: path.clone(),
            source,
        };
        let mut file = fs::File::open(&path).map_err(io)?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = file.read(&mut buf).map_err(io)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
        }
        Ok(format!("{:x}", hasher.finalize()))
    }
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, String> {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let text = fs::read_to_string(path).map_err(|e| format!("{name}: {e}"))?;
    serde_json::from_str(&text).map_err(|e| format!("{name}: {e}"))
}
