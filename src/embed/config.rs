//! `config.json` of a BERT-family model, parsed once into paperscope's own type.
//!
//! Both forward passes read their hyper-parameters from [`BertConfig`]: the own engine
//! directly, Candle's `BertModel` through [`BertConfig::to_candle`]. What neither engine
//! implements (relative position embeddings, decoders, other activations) is refused here,
//! at load time, with the field's name.

use serde::Deserialize;

/// The feed-forward activation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    /// `gelu`: the exact, erf-based GELU.
    GeluErf,
    /// `gelu_new`, `gelu_pytorch_tanh`, `gelu_fast`: the tanh approximation.
    GeluTanh,
    Relu,
}

/// The hyper-parameters of a BERT encoder.
#[derive(Clone, Debug, PartialEq)]
pub struct BertConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    pub activation: Activation,
    pub layer_norm_eps: f64,
    pub max_position_embeddings: usize,
    pub type_vocab_size: usize,
    pub pad_token_id: usize,
}

/// `config.json` as written by transformers; only the fields paperscope reads.
#[derive(Deserialize)]
struct Raw {
    vocab_size: Option<usize>,
    hidden_size: Option<usize>,
    num_hidden_layers: Option<usize>,
    num_attention_heads: Option<usize>,
    intermediate_size: Option<usize>,
    hidden_act: Option<String>,
    layer_norm_eps: Option<f64>,
    max_position_embeddings: Option<usize>,
    type_vocab_size: Option<usize>,
    pad_token_id: Option<usize>,
    position_embedding_type: Option<String>,
    is_decoder: Option<bool>,
}

impl BertConfig {
    /// Parses and checks `config.json`'s text.
    ///
    /// # Errors
    /// A message naming the missing, invalid or unsupported field.
    pub fn from_json(text: &str) -> Result<BertConfig, String> {
        let raw: Raw = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let need = |v: Option<usize>, key: &str| {
            v.filter(|&x| x > 0)
                .ok_or_else(|| format!("missing or invalid `{key}`"))
        };
        let hidden_size = need(raw.hidden_size, "hidden_size")?;
        let num_attention_heads = need(raw.num_attention_heads, "num_attention_heads")?;
        if hidden_size % num_attention_heads != 0 {
            return Err(format!(
                "hidden_size {hidden_size} not divisible by num_attention_heads {num_attention_heads}"
            ));
        }
        let activation = match raw.hidden_act.as_deref().unwrap_or("gelu") {
            "gelu" => Activation::GeluErf,
            "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" => Activation::GeluTanh,
            "relu" => Activation::Relu,
            other => return Err(format!("unsupported hidden_act `{other}`")),
        };
        match raw.position_embedding_type.as_deref() {
            None | Some("absolute") => {}
            Some(other) => return Err(format!("unsupported position_embedding_type `{other}`")),
        }
        if raw.is_decoder == Some(true) {
            return Err("decoder models are not supported".into());
        }
        Ok(BertConfig {
            vocab_size: need(raw.vocab_size, "vocab_size")?,
            hidden_size,
            num_hidden_layers: need(raw.num_hidden_layers, "num_hidden_layers")?,
            num_attention_heads,
            intermediate_size: need(raw.intermediate_size, "intermediate_size")?,
            activation,
            layer_norm_eps: raw.layer_norm_eps.unwrap_or(1e-12),
            max_position_embeddings: need(raw.max_position_embeddings, "max_position_embeddings")?,
            type_vocab_size: raw.type_vocab_size.unwrap_or(2),
            pad_token_id: raw.pad_token_id.unwrap_or(0),
        })
    }

    /// The same configuration as candle-transformers' type, for the reference backend.
    pub(super) fn to_candle(&self) -> candle_transformers::models::bert::Config {
        use candle_transformers::models::bert::{Config, HiddenAct, PositionEmbeddingType};
        Config {
            vocab_size: self.vocab_size,
            hidden_size: self.hidden_size,
            num_hidden_layers: self.num_hidden_layers,
            num_attention_heads: self.num_attention_heads,
            intermediate_size: self.intermediate_size,
            hidden_act: match self.activation {
                Activation::GeluErf => HiddenAct::Gelu,
                Activation::GeluTanh => HiddenAct::GeluApproximate,
                Activation::Relu => HiddenAct::Relu,
            },
            hidden_dropout_prob: 0.0,
            max_position_embeddings: self.max_position_embeddings,
            type_vocab_size: self.type_vocab_size,
            initializer_range: 0.02,
            layer_norm_eps: self.layer_norm_eps,
            pad_token_id: self.pad_token_id,
            position_embedding_type: PositionEmbeddingType::Absolute,
            use_cache: false,
            classifier_dropout: None,
            model_type: Some("bert".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINILM: &str = r#"{"hidden_act":"gelu","hidden_size":384,"num_attention_heads":12,
        "num_hidden_layers":6,"intermediate_size":1536,"max_position_embeddings":512,
        "vocab_size":30522,"layer_norm_eps":1e-12,"type_vocab_size":2,"pad_token_id":0}"#;

    #[test]
    fn reads_a_minilm_config() {
        let c = BertConfig::from_json(MINILM).unwrap();
        assert_eq!(
            (c.hidden_size, c.num_hidden_layers, c.num_attention_heads),
            (384, 6, 12)
        );
        assert_eq!(c.activation, Activation::GeluErf);
        assert_eq!(c.to_candle().hidden_size, 384);
    }

    #[test]
    fn refuses_what_no_engine_implements() {
        let with = |k: &str, v: &str| MINILM.replacen('{', &format!("{{\"{k}\":{v},"), 1);
        let err = |text: String| BertConfig::from_json(&text).unwrap_err();
        assert!(err(with("position_embedding_type", "\"relative_key\"")).contains("relative_key"));
        assert!(err(with("is_decoder", "true")).contains("decoder"));
        assert!(err(MINILM.replace("\"gelu\"", "\"swish\"")).contains("swish"));
        assert!(err(MINILM.replace("384", "385")).contains("divisible"));
        assert!(err(MINILM.replace("\"vocab_size\":30522,", "")).contains("vocab_size"));
    }
}
