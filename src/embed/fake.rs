//! A deterministic stand-in for a model, for unit tests of the logic above the encoder
//! (fusion, filters, pages, recommend, the model service) that should run in milliseconds
//! and not depend on model files. Never used outside tests; the integration tests run
//! the real model.
//!
//! Each text becomes the normalised sum of one signed unit per word (lower-cased runs of
//! letters and digits), the word's hash choosing the coordinate and the sign: texts that
//! share words are close, texts that share none are near-orthogonal. It is a bag of
//! words, so it knows nothing of meaning — tests assert only what that implies.

use super::{Encoder, Error, ModelInfo, Pooling, Precision, Vector};
use std::hash::{Hash, Hasher};

/// See the module docs.
#[derive(Debug, Clone)]
pub struct FakeEncoder {
    info: ModelInfo,
}

impl FakeEncoder {
    /// A fake model producing `dim`-dimensional vectors.
    pub fn new(dim: usize) -> FakeEncoder {
        FakeEncoder {
            info: ModelInfo {
                name: "fake".into(),
                weights_sha256: format!("fake-bag-of-words-{dim}"),
                dim,
                pooling: Pooling::Mean,
                max_tokens: 256,
            },
        }
    }

    fn vector(&self, text: &str) -> Vector {
        let dim = self.info.dim.max(1);
        let mut v = vec![0f32; dim];
        let words = text
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty());
        for w in words {
            // DefaultHasher with fixed keys: the same on every run and platform build.
            let mut h = std::collections::hash_map::DefaultHasher::new();
            w.to_lowercase().hash(&mut h);
            let x = h.finish();
            let sign = if x >> 63 == 0 { 1.0 } else { -1.0 };
            v[(x % dim as u64) as usize] += sign;
        }
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        if norm > 0.0 {
            v.iter_mut().for_each(|x| *x /= norm);
        }
        v
    }
}

impl Encoder for FakeEncoder {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    fn describe(&self) -> String {
        "fake: bag of hashed words (tests only)".into()
    }

    fn precision(&self) -> Precision {
        Precision::F32
    }

    fn embed_with_progress(
        &self,
        texts: &[&str],
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<Vec<Vector>, Error> {
        let out: Vec<Vector> = texts.iter().map(|t| self.vector(t)).collect();
        progress(texts.len(), 0);
        Ok(out)
    }

    /// Words, plus `[CLS]` and `[SEP]`.
    fn token_count(&self, text: &str) -> Result<usize, Error> {
        Ok(text.split_whitespace().count() + 2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vector::dot;

    #[test]
    fn shared_words_make_texts_close_and_vectors_unit_length() {
        let e = FakeEncoder::new(64);
        let [a, b, c] = [
            "emergent misalignment in language models",
            "Emergent misalignment, again",
            "superconducting kagome lattice",
        ]
        .map(|t| e.embed_one(t).unwrap());
        assert!((dot(&a, &a) - 1.0).abs() < 1e-5);
        assert!(dot(&a, &b) > dot(&a, &c));
        assert_eq!(
            e.embed_one("same text").unwrap(),
            e.embed_one("same text").unwrap()
        );
    }
}
