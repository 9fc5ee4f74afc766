//! KServe v2 tensors as LLM servers use them: building input tensors (`text_input` BYTES,
//! `max_tokens` INT32, `stream` BOOL, and any `--extra-inputs` value), and reading a tensor's
//! elements whether they were sent in typed `contents` or as raw bytes.
//!
//! Raw contents are the elements flattened in row-major order, little-endian, with no padding;
//! a `BYTES` element is prefixed by its length as 4 bytes little-endian. The `kserve` endpoint
//! reads `text_output` with [`elements`]; `aiperf mock-server` reads requests and writes
//! responses with the same functions, so client and server share one reading of the protocol.
//!
//! ```
//! use aiperf_endpoints::kserve::tensor::{self, Elements};
//!
//! let raw = tensor::encode_raw_bytes([&b"Hello"[..], b" world"]);
//! let read = tensor::elements(tensor::BYTES, None, Some(&raw)).unwrap();
//! assert_eq!(read, Elements::Bytes(vec![&b"Hello"[..], b" world"]));
//! ```

use serde_json::Value;

use super::proto::InferTensorContents;
use super::proto::model_infer_request::InferInputTensor;

/// The `BYTES` data type: strings or blobs, one per element.
pub const BYTES: &str = "BYTES";
/// The `BOOL` data type.
pub const BOOL: &str = "BOOL";
/// The `INT32` data type.
pub const INT32: &str = "INT32";
/// The `INT64` data type.
pub const INT64: &str = "INT64";
/// The `UINT64` data type.
pub const UINT64: &str = "UINT64";
/// The `FP32` data type.
pub const FP32: &str = "FP32";

/// A tensor that cannot be built or read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TensorError {
    /// An `--extra-inputs` value with no tensor form.
    #[error(
        "extra input `{name}` {problem}: give a boolean, a number, a string, a JSON object (sent \
         as its JSON text) or a list of one of these"
    )]
    UnsupportedValue {
        /// The input's name.
        name: String,
        /// What is wrong with its value.
        problem: &'static str,
    },
    /// The data type is not one aiperf reads.
    #[error(
        "tensor data type `{0}` is not supported: aiperf reads BOOL, INT*, UINT*, FP32, FP64 and BYTES"
    )]
    UnsupportedType(String),
    /// Raw contents whose length does not fit their data type.
    #[error("raw {datatype} contents of {len} bytes are not a whole number of elements")]
    RawLength {
        /// The data type.
        datatype: String,
        /// The number of bytes.
        len: usize,
    },
    /// A `BYTES` element whose length prefix runs past the end of the raw contents.
    #[error("raw BYTES contents are cut off: an element of {declared} bytes has only {left} left")]
    RawBytesCut {
        /// The length the element's prefix declares.
        declared: usize,
        /// The bytes left after the prefix.
        left: usize,
    },
}

/// A tensor's elements, by kind of data type.
#[derive(Debug, Clone, PartialEq)]
pub enum Elements<'a> {
    /// `BYTES` elements.
    Bytes(Vec<&'a [u8]>),
    /// `BOOL` elements.
    Bool(Vec<bool>),
    /// Signed integer elements (`INT8` to `INT64`).
    Int(Vec<i64>),
    /// Unsigned integer elements (`UINT8` to `UINT64`).
    UInt(Vec<u64>),
    /// Floating-point elements (`FP32`, `FP64`).
    Float(Vec<f64>),
}

impl Elements<'_> {
    /// The first element as an integer, when the tensor holds integers that fit an `i64`.
    pub fn first_integer(&self) -> Option<i64> {
        match self {
            Self::Int(values) => values.first().copied(),
            Self::UInt(values) => values.first().and_then(|v| i64::try_from(*v).ok()),
            _ => None,
        }
    }

    /// The first element as a boolean, when the tensor holds booleans.
    pub fn first_bool(&self) -> Option<bool> {
        match self {
            Self::Bool(values) => values.first().copied(),
            _ => None,
        }
    }
}

/// A `BYTES` input of shape `[n]`, one element per item.
pub fn bytes_input(name: &str, elements: Vec<Vec<u8>>) -> InferInputTensor {
    let shape = vec![elements.len() as i64];
    input(name, BYTES, shape, |c| c.bytes_contents = elements)
}

/// A `BOOL` input of shape `[n]`.
pub fn bool_input(name: &str, values: Vec<bool>) -> InferInputTensor {
    let shape = vec![values.len() as i64];
    input(name, BOOL, shape, |c| c.bool_contents = values)
}

/// An `INT32` input of shape `[n]`.
pub fn int32_input(name: &str, values: Vec<i32>) -> InferInputTensor {
    let shape = vec![values.len() as i64];
    input(name, INT32, shape, |c| c.int_contents = values)
}

fn input(
    name: &str,
    datatype: &str,
    shape: Vec<i64>,
    fill: impl FnOnce(&mut InferTensorContents),
) -> InferInputTensor {
    let mut contents = InferTensorContents::default();
    fill(&mut contents);
    InferInputTensor {
        name: name.to_owned(),
        datatype: datatype.to_owned(),
        shape,
        contents: Some(contents),
        ..InferInputTensor::default()
    }
}

/// The input tensor for an `--extra-inputs` value, shape `[1]` (or `[n]` for a list):
/// a boolean is `BOOL`; an integer `INT32` (`INT64` or `UINT64` when it does not fit); another
/// number `FP32`; a string `BYTES`; an object `BYTES` holding its JSON text (as the vLLM
/// backend's `sampling_parameters` expects). `null` means no tensor at all, which lets a user
/// drop one the endpoint would send.
pub fn input_from_json(name: &str, value: &Value) -> Result<Option<InferInputTensor>, TensorError> {
    let unsupported = |problem| TensorError::UnsupportedValue {
        name: name.to_owned(),
        problem,
    };
    let items: &[Value] = match value {
        Value::Null => return Ok(None),
        Value::Array(items) if items.is_empty() => {
            return Err(unsupported(
                "is an empty list, whose data type cannot be known",
            ));
        }
        Value::Array(items) => items,
        scalar => std::slice::from_ref(scalar),
    };
    let shape = vec![items.len() as i64];
    let kind = |value: &Value| match value {
        Value::Bool(_) => 0,
        Value::Number(_) => 1,
        Value::String(_) | Value::Object(_) => 2,
        Value::Null | Value::Array(_) => 3,
    };
    let first = kind(&items[0]);
    if first == 3 || items.iter().any(|item| kind(item) != first) {
        return Err(unsupported(
            "holds nulls, nested lists or values of different types",
        ));
    }
    let tensor = match &items[0] {
        Value::Bool(_) => {
            let values = items.iter().filter_map(Value::as_bool).collect();
            input(name, BOOL, shape, |c| c.bool_contents = values)
        }
        Value::Number(_) => number_input(name, items, shape),
        _ => {
            let values = items
                .iter()
                .map(|item| match item {
                    Value::String(text) => text.clone().into_bytes(),
                    other => other.to_string().into_bytes(),
                })
                .collect();
            input(name, BYTES, shape, |c| c.bytes_contents = values)
        }
    };
    Ok(Some(tensor))
}

/// Numbers: the narrowest of INT32, INT64, UINT64 that holds every item, else FP32.
fn number_input(name: &str, items: &[Value], shape: Vec<i64>) -> InferInputTensor {
    let ints: Option<Vec<i32>> = items
        .iter()
        .map(|v| v.as_i64().and_then(|n| i32::try_from(n).ok()))
        .collect();
    if let Some(values) = ints {
        return input(name, INT32, shape, |c| c.int_contents = values);
    }
    let longs: Option<Vec<i64>> = items.iter().map(Value::as_i64).collect();
    if let Some(values) = longs {
        return input(name, INT64, shape, |c| c.int64_contents = values);
    }
    let unsigned: Option<Vec<u64>> = items.iter().map(Value::as_u64).collect();
    if let Some(values) = unsigned {
        return input(name, UINT64, shape, |c| c.uint64_contents = values);
    }
    let floats = items
        .iter()
        .filter_map(Value::as_f64)
        .map(|f| f as f32)
        .collect();
    input(name, FP32, shape, |c| c.fp32_contents = floats)
}

/// Raw `BYTES` contents: each element prefixed by its length, 4 bytes little-endian.
pub fn encode_raw_bytes<'a>(elements: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut raw = Vec::new();
    for element in elements {
        let len = u32::try_from(element.len()).expect("a tensor element is under 4 GiB");
        raw.extend_from_slice(&len.to_le_bytes());
        raw.extend_from_slice(element);
    }
    raw
}

/// A tensor's elements, from its raw contents when `raw` is given, else from `contents`
/// (absent contents read as no elements).
pub fn elements<'a>(
    datatype: &str,
    contents: Option<&'a InferTensorContents>,
    raw: Option<&'a [u8]>,
) -> Result<Elements<'a>, TensorError> {
    match raw {
        Some(raw) => raw_elements(datatype, raw),
        None => typed_elements(datatype, contents),
    }
}

fn typed_elements<'a>(
    datatype: &str,
    contents: Option<&'a InferTensorContents>,
) -> Result<Elements<'a>, TensorError> {
    static EMPTY: InferTensorContents = InferTensorContents {
        bool_contents: Vec::new(),
        int_contents: Vec::new(),
        int64_contents: Vec::new(),
        uint_contents: Vec::new(),
        uint64_contents: Vec::new(),
        fp32_contents: Vec::new(),
        fp64_contents: Vec::new(),
        bytes_contents: Vec::new(),
    };
    let c = contents.unwrap_or(&EMPTY);
    Ok(match datatype {
        BYTES => Elements::Bytes(c.bytes_contents.iter().map(Vec::as_slice).collect()),
        BOOL => Elements::Bool(c.bool_contents.clone()),
        "INT8" | "INT16" | INT32 => {
            Elements::Int(c.int_contents.iter().map(|&v| v.into()).collect())
        }
        INT64 => Elements::Int(c.int64_contents.clone()),
        "UINT8" | "UINT16" | "UINT32" => {
            Elements::UInt(c.uint_contents.iter().map(|&v| v.into()).collect())
        }
        UINT64 => Elements::UInt(c.uint64_contents.clone()),
        FP32 => Elements::Float(c.fp32_contents.iter().map(|&v| v.into()).collect()),
        "FP64" => Elements::Float(c.fp64_contents.clone()),
        other => return Err(TensorError::UnsupportedType(other.to_owned())),
    })
}

fn raw_elements<'a>(datatype: &str, raw: &'a [u8]) -> Result<Elements<'a>, TensorError> {
    if datatype == BYTES {
        return split_raw_bytes(raw).map(Elements::Bytes);
    }
    let width = match datatype {
        BOOL | "INT8" | "UINT8" => 1,
        "INT16" | "UINT16" => 2,
        INT32 | "UINT32" | FP32 => 4,
        INT64 | UINT64 | "FP64" => 8,
        other => return Err(TensorError::UnsupportedType(other.to_owned())),
    };
    if !raw.len().is_multiple_of(width) {
        return Err(TensorError::RawLength {
            datatype: datatype.to_owned(),
            len: raw.len(),
        });
    }
    let words = raw.chunks_exact(width);
    let le = |bytes: &[u8]| {
        let mut word = [0u8; 8];
        word[..bytes.len()].copy_from_slice(bytes);
        u64::from_le_bytes(word)
    };
    // Sign-extends a `bits`-wide little-endian integer.
    let signed = |value: u64, bits: u32| ((value << (64 - bits)) as i64) >> (64 - bits);
    Ok(match datatype {
        BOOL => Elements::Bool(words.map(|w| w[0] != 0).collect()),
        "INT8" | "INT16" | INT32 | INT64 => {
            let bits = (width * 8) as u32;
            Elements::Int(words.map(|w| signed(le(w), bits)).collect())
        }
        FP32 => Elements::Float(
            words
                .map(|w| f64::from(f32::from_bits(le(w) as u32)))
                .collect(),
        ),
        "FP64" => Elements::Float(words.map(|w| f64::from_bits(le(w))).collect()),
        _ => Elements::UInt(words.map(le).collect()),
    })
}

/// The elements of raw `BYTES` contents.
pub fn split_raw_bytes(mut raw: &[u8]) -> Result<Vec<&[u8]>, TensorError> {
    let mut elements = Vec::new();
    while !raw.is_empty() {
        let Some((prefix, rest)) = raw.split_first_chunk::<4>() else {
            return Err(TensorError::RawBytesCut {
                declared: 4,
                left: raw.len(),
            });
        };
        let declared = u32::from_le_bytes(*prefix) as usize;
        if declared > rest.len() {
            return Err(TensorError::RawBytesCut {
                declared,
                left: rest.len(),
            });
        }
        let (element, rest) = rest.split_at(declared);
        elements.push(element);
        raw = rest;
    }
    Ok(elements)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    fn read(tensor: &InferInputTensor) -> Elements<'_> {
        elements(&tensor.datatype, tensor.contents.as_ref(), None).unwrap()
    }

    #[test]
    fn json_values_become_tensors_of_the_narrowest_type() {
        let cases = [
            (json!(true), BOOL, Elements::Bool(vec![true])),
            (json!(40), INT32, Elements::Int(vec![40])),
            (
                json!(-3_000_000_000_i64),
                INT64,
                Elements::Int(vec![-3_000_000_000]),
            ),
            (json!(u64::MAX), UINT64, Elements::UInt(vec![u64::MAX])),
            (json!(0.5), FP32, Elements::Float(vec![0.5])),
            (json!([1, 2.5]), FP32, Elements::Float(vec![1.0, 2.5])),
            (json!("stop"), BYTES, Elements::Bytes(vec![b"stop"])),
            (json!(["a", "b"]), BYTES, Elements::Bytes(vec![b"a", b"b"])),
        ];
        for (value, datatype, expected) in cases {
            let tensor = input_from_json("x", &value).unwrap().unwrap();
            assert_eq!(tensor.name, "x");
            assert_eq!(tensor.datatype, datatype, "{value}");
            let n = value.as_array().map_or(1, Vec::len) as i64;
            assert_eq!(tensor.shape, [n]);
            assert_eq!(read(&tensor), expected, "{value}");
        }
        let object = input_from_json("sampling_parameters", &json!({"top_k": 1}))
            .unwrap()
            .unwrap();
        assert_eq!(read(&object), Elements::Bytes(vec![br#"{"top_k":1}"#]));
        assert_eq!(input_from_json("x", &Value::Null), Ok(None));
    }

    #[test]
    fn values_with_no_tensor_form_are_named_in_the_error() {
        for value in [json!([]), json!([1, "a"]), json!([[1]]), json!([null])] {
            let error = input_from_json("stop_words", &value).unwrap_err();
            assert!(
                error.to_string().starts_with("extra input `stop_words`"),
                "{error}"
            );
        }
    }

    #[test]
    fn raw_contents_read_like_typed_ones() {
        let ints: Vec<u8> = [7i32, -2].iter().flat_map(|v| v.to_le_bytes()).collect();
        assert_eq!(raw_elements(INT32, &ints), Ok(Elements::Int(vec![7, -2])));
        assert_eq!(raw_elements("INT8", &[0xFF]), Ok(Elements::Int(vec![-1])));
        assert_eq!(
            raw_elements("UINT16", &[1, 1]),
            Ok(Elements::UInt(vec![257]))
        );
        assert_eq!(
            raw_elements(BOOL, &[1, 0]),
            Ok(Elements::Bool(vec![true, false]))
        );
        let float = 1.5f32.to_le_bytes();
        assert_eq!(raw_elements(FP32, &float), Ok(Elements::Float(vec![1.5])));
        assert!(matches!(
            raw_elements(INT64, &[0; 5]),
            Err(TensorError::RawLength { len: 5, .. })
        ));
        assert_eq!(
            elements("FP16", None, Some(&[0, 0])),
            Err(TensorError::UnsupportedType("FP16".into()))
        );
        assert_eq!(elements(BYTES, None, None), Ok(Elements::Bytes(vec![])));
        assert_eq!(Elements::UInt(vec![3]).first_integer(), Some(3));
        assert_eq!(Elements::Bool(vec![true]).first_bool(), Some(true));
    }

    #[test]
    fn cut_raw_bytes_are_errors() {
        assert_eq!(
            split_raw_bytes(&[5, 0, 0, 0, b'a']),
            Err(TensorError::RawBytesCut {
                declared: 5,
                left: 1
            })
        );
        assert!(split_raw_bytes(&[1, 0]).is_err());
        assert_eq!(split_raw_bytes(&[0, 0, 0, 0]), Ok(vec![&b""[..]]));
    }

    proptest! {
        #[test]
        fn raw_bytes_round_trip(items in proptest::collection::vec(any::<Vec<u8>>(), 0..8)) {
            let raw = encode_raw_bytes(items.iter().map(Vec::as_slice));
            let back = split_raw_bytes(&raw).unwrap();
            prop_assert_eq!(back, items.iter().map(Vec::as_slice).collect::<Vec<_>>());
        }
    }
}
