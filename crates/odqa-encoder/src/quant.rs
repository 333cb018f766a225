//! A BERT encoder whose linear weights stay GGML Q4_0 blocks (candle's
//! `QMatMul`), built straight from an E5S1 file. Same math as
//! candle-transformers' BERT: post-LayerNorm, erf GELU, absolute positions
//! from 0, additive attention mask.

use candle_core::quantized::{ggml_file::qtensor_from_ggml, GgmlDType, QMatMul};
use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{Embedding, LayerNorm};
use candle_transformers::models::bert::Config;

use crate::e5s1::{E5s1DType, E5s1File};
use crate::error::{EncoderError, Result};

struct QLinear {
    w: QMatMul,
    b: Tensor,
}

impl QLinear {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let (b, s, k) = x.dims3()?;
        let y = self.w.forward(&x.reshape((b * s, k))?)?;
        let n = y.dim(1)?;
        y.broadcast_add(&self.b)?.reshape((b, s, n))
    }
}

struct Layer {
    q: QLinear,
    k: QLinear,
    v: QLinear,
    ao: QLinear,
    aln: LayerNorm,
    fi: QLinear,
    fo: QLinear,
    oln: LayerNorm,
}

/// BERT with Q4_0 linear layers.
pub(crate) struct QuantBert {
    word: Embedding,
    pos: Embedding,
    typ: Embedding,
    emb_ln: LayerNorm,
    layers: Vec<Layer>,
    heads: usize,
    head_dim: usize,
}

struct Loader<'a> {
    file: &'a E5s1File,
    device: &'a Device,
    eps: f64,
}

impl Loader<'_> {
    fn f32(&self, name: &str) -> Result<Tensor> {
        let t = self.get(name)?;
        let (_, shape) = self.file.hf(t)?;
        Ok(Tensor::from_vec(self.file.values(t), shape, self.device)?)
    }
    fn get(&self, name: &str) -> Result<&crate::e5s1::E5s1Tensor> {
        self.file
            .tensor(name)
            .ok_or_else(|| EncoderError::MissingTensor {
                path: self.file.path().to_path_buf(),
                name: name.to_string(),
            })
    }
    fn linear(&self, prefix: &str) -> Result<QLinear> {
        let wname = format!("{prefix}.w");
        let t = self.get(&wname)?;
        let (_, shape) = self.file.hf(t)?;
        let w = match t.dtype {
            E5s1DType::Q4_0 => QMatMul::from_qtensor(qtensor_from_ggml(
                GgmlDType::Q4_0,
                self.file.raw(t),
                shape,
                self.device,
            )?)?,
            E5s1DType::F32 => {
                QMatMul::Tensor(Tensor::from_vec(self.file.values(t), shape, self.device)?)
            }
        };
        Ok(QLinear {
            w,
            b: self.f32(&format!("{prefix}.b"))?,
        })
    }
    fn ln(&self, prefix: &str) -> Result<LayerNorm> {
        Ok(LayerNorm::new(
            self.f32(&format!("{prefix}.w"))?,
            self.f32(&format!("{prefix}.b"))?,
            self.eps,
        ))
    }
    fn emb(&self, name: &str) -> Result<Embedding> {
        let t = self.f32(name)?;
        let h = t.dim(1)?;
        Ok(Embedding::new(t, h))
    }
}

impl QuantBert {
    pub(crate) fn from_e5s1(file: &E5s1File, config: &Config, device: &Device) -> Result<Self> {
        let l = Loader {
            file,
            device,
            eps: config.layer_norm_eps,
        };
        let mut layers = Vec::with_capacity(config.num_hidden_layers);
        for i in 0..config.num_hidden_layers {
            let p = |s: &str| format!("l{i}.{s}");
            layers.push(Layer {
                q: l.linear(&p("q"))?,
                k: l.linear(&p("k"))?,
                v: l.linear(&p("v"))?,
                ao: l.linear(&p("ao"))?,
                aln: l.ln(&p("aln"))?,
                fi: l.linear(&p("fi"))?,
                fo: l.linear(&p("fo"))?,
                oln: l.ln(&p("oln"))?,
            });
        }
        Ok(QuantBert {
            word: l.emb("emb.word")?,
            pos: l.emb("emb.pos")?,
            typ: l.emb("emb.type")?,
            emb_ln: l.ln("emb.ln")?,
            layers,
            heads: config.num_attention_heads,
            head_dim: config.hidden_size / config.num_attention_heads,
        })
    }

    /// `ids`, `types`, `mask`: `[b, s]` u32; returns `[b, s, hidden]`.
    pub(crate) fn forward(
        &self,
        ids: &Tensor,
        types: &Tensor,
        mask: &Tensor,
    ) -> candle_core::Result<Tensor> {
        let (b, s) = ids.dims2()?;
        let positions = Tensor::arange(0u32, s as u32, ids.device())?;
        let x = self
            .word
            .forward(ids)?
            .add(&self.typ.forward(types)?)?
            .broadcast_add(&self.pos.forward(&positions)?)?;
        let mut x = self.emb_ln.forward(&x)?;
        // [b, 1, 1, s]: 0 for tokens, f32::MIN for padding.
        let mask = mask.to_dtype(DType::F32)?;
        let bias = ((mask.ones_like()? - &mask)? * f64::from(f32::MIN))?.reshape((b, 1, 1, s))?;
        let scale = 1.0 / (self.head_dim as f64).sqrt();
        for layer in &self.layers {
            let split = |t: Tensor| -> candle_core::Result<Tensor> {
                t.reshape((b, s, self.heads, self.head_dim))?
                    .transpose(1, 2)?
                    .contiguous()
            };
            let q = split(layer.q.forward(&x)?)?;
            let k = split(layer.k.forward(&x)?)?;
            let v = split(layer.v.forward(&x)?)?;
            let scores = (q.matmul(&k.t()?)? * scale)?.broadcast_add(&bias)?;
            let probs = candle_nn::ops::softmax_last_dim(&scores)?;
            let ctx = probs.matmul(&v)?.transpose(1, 2)?.contiguous()?.reshape((
                b,
                s,
                self.heads * self.head_dim,
            ))?;
            let a = layer.aln.forward(&(layer.ao.forward(&ctx)? + &x)?)?;
            let f = layer.fi.forward(&a)?.gelu_erf()?;
            x = layer.oln.forward(&(layer.fo.forward(&f)? + &a)?)?;
        }
        Ok(x)
    }
}
