//! The reference backend: candle-transformers' `BertModel` in F32 on the CPU.
//!
//! Texts of one batch are padded to the batch's longest sequence; the attention mask
//! keeps padding out of attention, and pooling ignores it, so results do not depend on
//! how texts are batched (beyond float rounding).

use super::{Error, Forward, ModelDir, Pooling, Precision, Vector};
use candle_core::{DType, Device, Tensor, D};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::BertModel;

pub(super) struct CandleBert {
    model: BertModel,
    device: Device,
}

impl CandleBert {
    pub(super) fn load(dir: &ModelDir) -> Result<Self, Error> {
        let device = Device::Cpu;
        // SAFETY: the file is memory-mapped read-only; paperscope never writes model files
        // while running, and a concurrent external modification is outside its contract.
        let vb = unsafe {
            VarBuilder::from_mmaped_safetensors(&[dir.weights_path()], DType::F32, &device)
        }
        .map_err(|e| Error::model(dir, e))?;
        let model =
            BertModel::load(vb, &dir.config.to_candle()).map_err(|e| Error::model(dir, e))?;
        Ok(CandleBert { model, device })
    }

    fn forward(&self, seqs: &[&[u32]], pooling: Pooling) -> candle_core::Result<Vec<Vec<f32>>> {
        let n = seqs.len();
        let len = seqs.iter().map(|s| s.len()).max().unwrap_or(0);
        let mut ids = vec![0u32; n * len];
        let mut mask = vec![0f32; n * len];
        for (i, s) in seqs.iter().enumerate() {
            ids[i * len..i * len + s.len()].copy_from_slice(s);
            mask[i * len..i * len + s.len()].fill(1.0);
        }
        let ids = Tensor::from_vec(ids, (n, len), &self.device)?;
        let mask = Tensor::from_vec(mask, (n, len), &self.device)?;
        let type_ids = ids.zeros_like()?;
        let hidden = self.model.forward(&ids, &type_ids, Some(&mask))?; // (n, len, dim)
        let pooled = match pooling {
            Pooling::Cls => hidden.narrow(1, 0, 1)?.squeeze(1)?,
            Pooling::Mean => {
                let m = mask.unsqueeze(2)?; // (n, len, 1)
                let sum = hidden.broadcast_mul(&m)?.sum(1)?; // (n, dim)
                let count = m.sum(1)?.clamp(1.0, f64::MAX)?; // (n, 1)
                sum.broadcast_div(&count)?
            }
        };
        let norm = pooled
            .sqr()?
            .sum_keepdim(D::Minus1)?
            .sqrt()?
            .clamp(1e-12, f64::MAX)?;
        pooled.broadcast_div(&norm)?.to_vec2()
    }
}

impl Forward for CandleBert {
    /// Small batches measured faster (less padding and memory traffic per matmul).
    fn batch_size(&self) -> usize {
        16
    }

    fn describe(&self) -> String {
        "candle: candle-transformers BertModel, f32, padded batches".into()
    }

    fn precision(&self) -> Precision {
        Precision::F32
    }

    fn embed(&self, seqs: &[&[u32]], pooling: Pooling) -> Result<Vec<Vector>, Error> {
        self.forward(seqs, pooling)
            .map_err(|e| Error::Forward(e.to_string()))
    }
}
