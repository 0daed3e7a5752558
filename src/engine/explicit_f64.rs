//! Non-finite numbers as explicit JSON values. `serde_json` writes NaN and ±∞ as `null`, which
//! then fails to read back into an `f64` and with it the whole message: one NaN statistic (a
//! model whose weights hold NaN, an empty summary) would leave a pane waiting for ever. Fields
//! marked `#[serde(with = "explicit_f64")]` write them as the strings "NaN", "inf" and "-inf"
//! (finite values are plain numbers, as before) and read numbers, those strings or `null`.

use serde::{de, Deserialize, Deserializer, Serializer};

fn write<S: Serializer>(v: f64, s: S) -> Result<S::Ok, S::Error> {
    if v.is_finite() {
        s.serialize_f64(v)
    } else if v.is_nan() {
        s.serialize_str("NaN")
    } else if v > 0.0 {
        s.serialize_str("inf")
    } else {
        s.serialize_str("-inf")
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Wire {
    Number(f64),
    Text(String),
    Null(()),
}

fn read(w: Wire) -> Result<f64, String> {
    match w {
        Wire::Number(v) => Ok(v),
        Wire::Null(()) => Ok(f64::NAN),
        Wire::Text(t) => match t.as_str() {
            "NaN" => Ok(f64::NAN),
            "inf" => Ok(f64::INFINITY),
            "-inf" => Ok(f64::NEG_INFINITY),
            other => Err(format!("`{other}` is not a number")),
        },
    }
}

/// A JSON value for `v` as the fields above write it (for output built with `json!`, which
/// would write a non-finite number as `null`).
pub fn value(v: f64) -> serde_json::Value {
    write(v, serde_json::value::Serializer).unwrap_or(serde_json::Value::Null)
}

pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
    write(*v, s)
}

pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    read(Wire::deserialize(d)?).map_err(de::Error::custom)
}

/// `Option<f64>`: `None` stays `null`; a NaN inside is "NaN".
pub mod option {
    use super::*;

    pub fn serialize<S: Serializer>(v: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(x) => write(*x, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
        match Option::<Wire>::deserialize(d)? {
            None | Some(Wire::Null(())) => Ok(None),
            Some(w) => read(w).map(Some).map_err(de::Error::custom),
        }
    }
}

/// `Vec<f64>`.
pub mod vec {
    use super::*;
    use serde::ser::SerializeSeq;

    struct One(f64);

    impl serde::Serialize for One {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            write(self.0, s)
        }
    }

    pub fn serialize<S: Serializer>(v: &[f64], s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(v.len()))?;
        for &x in v {
            seq.serialize_element(&One(x))?;
        }
        seq.end()
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
        Vec::<Wire>::deserialize(d)?
            .into_iter()
            .map(|w| read(w).map_err(de::Error::custom))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    #[derive(Serialize, Deserialize, Debug)]
    struct S {
        #[serde(with = "super")]
        a: f64,
        #[serde(with = "super::option")]
        b: Option<f64>,
        #[serde(with = "super::vec")]
        c: Vec<f64>,
    }

    #[test]
    fn non_finite_values_survive_the_wire() {
        let s = S {
            a: f64::NAN,
            b: Some(f64::INFINITY),
            c: vec![1.5, f64::NEG_INFINITY, f64::NAN],
        };
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(json, r#"{"a":"NaN","b":"inf","c":[1.5,"-inf","NaN"]}"#);
        let back: S = serde_json::from_str(&json).unwrap();
        assert!(back.a.is_nan());
        assert_eq!(back.b, Some(f64::INFINITY));
        assert_eq!(back.c[0], 1.5);
        assert!(back.c[2].is_nan());
        // What older messages and plain serde_json wrote still reads.
        let old: S = serde_json::from_str(r#"{"a":null,"b":null,"c":[2]}"#).unwrap();
        assert!(old.a.is_nan());
        assert_eq!(old.b, None);
        let plain: S = serde_json::from_str(r#"{"a":0.25,"b":1,"c":[]}"#).unwrap();
        assert_eq!((plain.a, plain.b), (0.25, Some(1.0)));
    }
}
