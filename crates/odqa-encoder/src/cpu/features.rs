//! What this CPU can do, detected once at run time (never assumed from the
//! build machine), and the precisions that follow from it.

use std::fmt;
use std::str::FromStr;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

/// The widest vector instruction set the elementwise kernels use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SimdLevel {
    Baseline,
    /// AVX2 + FMA (x86-64-v3).
    Avx2,
    /// AVX-512 F/BW/VL (x86-64-v4).
    Avx512,
}

/// Which instructions multiply the int8 kernel's quads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Int8Kernel {
    /// `vpdpbusd` (AVX512_VNNI): four u8 × i8 products into i32, one instruction.
    Vnni,
    /// AVX2 `vpmaddubsw` + `vpmaddwd` (the activation's sign moved onto the
    /// weight, so the i16 pair sums cannot saturate): the same i32 sums.
    Avx2,
}

/// The CPU features that decide which kernels run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuFeatures {
    pub simd: SimdLevel,
    /// `vdpbf16ps`: bf16 pairs multiplied into f32 (AVX512_BF16).
    pub avx512_bf16: bool,
    /// `vpdpbusd`: u8 × i8 quads into i32 (AVX512_VNNI).
    pub avx512_vnni: bool,
    /// Intel AMX tiles (bf16/int8); reported, not used by odqa's kernels.
    pub amx: bool,
}

impl CpuFeatures {
    fn detect() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            let avx512 = is_x86_feature_detected!("avx512f")
                && is_x86_feature_detected!("avx512bw")
                && is_x86_feature_detected!("avx512vl");
            let avx2 = is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma");
            let simd = if avx512 {
                SimdLevel::Avx512
            } else if avx2 {
                SimdLevel::Avx2
            } else {
                SimdLevel::Baseline
            };
            CpuFeatures {
                simd,
                avx512_bf16: avx512 && is_x86_feature_detected!("avx512bf16"),
                avx512_vnni: avx512 && is_x86_feature_detected!("avx512vnni"),
                // std's AMX detection is unstable; /proc/cpuinfo says it on Linux.
                amx: std::fs::read_to_string("/proc/cpuinfo")
                    .map(|s| s.contains(" amx_bf16"))
                    .unwrap_or(false),
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            CpuFeatures {
                simd: SimdLevel::Baseline,
                avx512_bf16: false,
                avx512_vnni: false,
                amx: false,
            }
        }
    }

    /// The flags, as lscpu spells them, that odqa's kernels care about.
    pub fn flags(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        if self.simd >= SimdLevel::Avx2 {
            out.extend(["avx2", "fma"]);
        }
        if self.simd >= SimdLevel::Avx512 {
            out.extend(["avx512f", "avx512bw", "avx512vl"]);
        }
        if self.avx512_bf16 {
            out.push("avx512_bf16");
        }
        if self.avx512_vnni {
            out.push("avx512_vnni");
        }
        if self.amx {
            out.push("amx_bf16");
        }
        out
    }

    /// The int8 kernel this CPU runs: VNNI where it has it, else AVX2.
    pub fn int8_kernel(&self) -> Option<Int8Kernel> {
        if self.avx512_vnni {
            Some(Int8Kernel::Vnni)
        } else if self.simd >= SimdLevel::Avx2 {
            Some(Int8Kernel::Avx2)
        } else {
            None
        }
    }

    /// Whether `precision` has a kernel on this CPU (`Auto` always does).
    pub fn supports(&self, precision: Precision) -> bool {
        match precision {
            Precision::Auto | Precision::F32 => true,
            Precision::Bf16 => self.avx512_bf16,
            Precision::Int8 => self.int8_kernel().is_some(),
        }
    }

    /// What `Auto` tries first on this CPU: bf16 where the CPU multiplies
    /// bf16 pairs, else f32 (int8 is opt-in: its dynamic activation
    /// quantization costs more accuracy than bf16 does).
    pub fn preferred(&self) -> Precision {
        if self.avx512_bf16 {
            Precision::Bf16
        } else {
            Precision::F32
        }
    }
}

/// This CPU's features (detected on first use).
pub fn cpu_features() -> &'static CpuFeatures {
    static FEATURES: OnceLock<CpuFeatures> = OnceLock::new();
    FEATURES.get_or_init(CpuFeatures::detect)
}

/// The CPU's model name as `/proc/cpuinfo` (and lscpu) gives it.
pub fn cpu_model_name() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string())
}

/// How the encoder's linear layers multiply. Attention, softmax, LayerNorm
/// and GELU stay f32 at every precision; products accumulate in f32 (bf16)
/// or i32 (int8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// This CPU's preferred precision ([`CpuFeatures::preferred`]: bf16
    /// where it has AVX512_BF16) when a probe batch passes the parity check
    /// against f32 at load time, else f32.
    #[default]
    Auto,
    F32,
    /// Weights in bf16, activations rounded to bf16, f32 accumulation.
    Bf16,
    /// Weights int8 per output row, activations int8 per token (dynamic),
    /// i32 accumulation (AVX512_VNNI, or AVX2 where VNNI is missing).
    Int8,
}

impl Precision {
    pub const NAMES: &'static str = "auto, f32, bf16, int8";

    pub fn name(self) -> &'static str {
        match self {
            Precision::Auto => "auto",
            Precision::F32 => "f32",
            Precision::Bf16 => "bf16",
            Precision::Int8 => "int8",
        }
    }
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Precision {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(Precision::Auto),
            "f32" | "fp32" => Ok(Precision::F32),
            "bf16" => Ok(Precision::Bf16),
            "int8" | "i8" => Ok(Precision::Int8),
            other => Err(format!(
                "unknown precision {other:?} (expected one of {})",
                Precision::NAMES
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precision_names_round_trip() {
        for p in [
            Precision::Auto,
            Precision::F32,
            Precision::Bf16,
            Precision::Int8,
        ] {
            assert_eq!(p.name().parse::<Precision>().unwrap(), p);
        }
        let e = "fp8".parse::<Precision>().unwrap_err();
        assert!(e.contains("fp8") && e.contains("bf16"), "{e}");
    }

    #[test]
    fn auto_and_f32_are_always_supported() {
        let f = cpu_features();
        assert!(f.supports(Precision::Auto) && f.supports(Precision::F32));
        assert!(f.supports(f.preferred()));
        let avx2 = CpuFeatures {
            simd: SimdLevel::Avx2,
            avx512_bf16: false,
            avx512_vnni: false,
            amx: false,
        };
        assert!(!avx2.supports(Precision::Bf16));
        assert_eq!(avx2.int8_kernel(), Some(Int8Kernel::Avx2));
        assert_eq!(avx2.preferred(), Precision::F32);
        let baseline = CpuFeatures {
            simd: SimdLevel::Baseline,
            ..avx2
        };
        assert!(!baseline.supports(Precision::Int8) && baseline.int8_kernel().is_none());
        let vnni = CpuFeatures {
            simd: SimdLevel::Avx512,
            avx512_vnni: true,
            ..avx2
        };
        assert_eq!(vnni.int8_kernel(), Some(Int8Kernel::Vnni));
    }
}
