//! The model catalog (`assets/models/catalog.json`), as the page reads it.

use serde::{Deserialize, Serialize};

/// Where the page finds the catalog and the model files, relative to its own URL, so `dist/`
/// works from any static server and any path.
pub const CATALOG_URL: &str = "assets/models/catalog.json";
pub const MODELS_DIR: &str = "assets/models/";
/// The model files the server has (`scripts/serve.py` answers it; a plain static host 404s).
pub const PRESENT_URL: &str = "assets/models/present.json";

/// The file names in a `present.json` (`{"files": {"name.gguf": bytes, …}}`).
pub fn parse_present(json: &str) -> Option<std::collections::HashSet<String>> {
    #[derive(Deserialize)]
    struct Present {
        files: std::collections::HashMap<String, u64>,
    }
    serde_json::from_str::<Present>(json)
        .ok()
        .map(|p| p.files.into_keys().collect())
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Catalog {
    pub default: String,
    pub models: Vec<CatalogModel>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CatalogModel {
    pub id: String,
    pub name: String,
    pub file: String,
    pub bytes: u64,
    pub sha256: String,
    pub architecture: String,
    pub parameters: String,
    pub quantization: String,
    pub license: String,
}

impl Catalog {
    pub fn parse(json: &str) -> Result<Self, String> {
        serde_json::from_str(json).map_err(|e| format!("the model catalog is unreadable: {e}"))
    }

    pub fn get(&self, id: &str) -> Option<&CatalogModel> {
        self.models.iter().find(|m| m.id == id)
    }
}

impl CatalogModel {
    /// The model's URL. The query names the content, so a replaced file on the server is a
    /// new cache entry rather than a stale hit (static servers ignore the query).
    pub fn url(&self) -> String {
        format!(
            "{MODELS_DIR}{}?sha256={}",
            self.file,
            self.sha256.get(..16).unwrap_or(&self.sha256)
        )
    }

    /// "SmolLM2 135M Instruct · 135M · Q4_1 · 98.4 MB"
    pub fn describe(&self) -> String {
        format!(
            "{} · {} · {} · {}",
            self.name,
            self.parameters,
            self.quantization,
            super::format::bytes(self.bytes)
        )
    }
}

/// The checksum a catalog model's URL names (`?sha256=` and 8 to 64 hex digits, lowercased):
/// a download is checked against it before it is used or kept.
pub fn url_checksum(url: &str) -> Option<String> {
    let (_, query) = url.split_once('?')?;
    let query = query.split('#').next().unwrap_or_default();
    query
        .split('&')
        .find_map(|kv| kv.strip_prefix("sha256="))
        .filter(|h| (8..=64).contains(&h.len()) && h.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(|h| h.to_ascii_lowercase())
}

/// Lowercase hex, as sha256sum writes a digest.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The cache key for a local file: a same-origin URL path (the Cache API wants URLs) that no
/// real file uses.
pub fn local_cache_key(name: &str, size: u64, modified: u64) -> String {
    let safe: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("local-models/{size}-{modified}/{safe}")
}

/// Whether a cache key is one of `local_cache_key`'s (a file of this machine, which no
/// server has), given as it is or as an address.
pub fn is_local_key(url: &str) -> bool {
    url.starts_with("local-models/") || url.contains("/local-models/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_names_its_checksum_or_none() {
        let c = Catalog::parse(include_str!("../../assets/models/catalog.json")).unwrap();
        for m in &c.models {
            let named = url_checksum(&m.url()).unwrap();
            assert!(
                m.sha256.starts_with(&named) && named.len() == 16,
                "{}",
                m.url()
            );
        }
        assert_eq!(
            url_checksum("a.gguf?x=1&sha256=ABCDEF0123#frag").as_deref(),
            Some("abcdef0123")
        );
        for url in [
            "a.gguf",
            "a.gguf?sha256=",
            "a.gguf?sha256=abc",
            "a.gguf?sha256=xyz0123456789",
            "a.gguf?nosha256=abcdef0123",
            "a.gguf#sha256=abcdef0123",
        ] {
            assert_eq!(url_checksum(url), None, "{url}");
        }
        assert_eq!(hex(&[0, 0xab, 0x10]), "00ab10");
    }

    #[test]
    fn present_lists_file_names_or_nothing() {
        let files = parse_present(r#"{"files": {"a.gguf": 10, "b.gguf": 2}}"#).unwrap();
        assert!(files.contains("a.gguf") && files.contains("b.gguf") && files.len() == 2);
        assert!(parse_present("<html>not found</html>").is_none());
        assert!(parse_present(r#"{"files": []}"#).is_none());
    }

    #[test]
    fn the_committed_catalog_parses() {
        let json = include_str!("../../assets/models/catalog.json");
        let c = Catalog::parse(json).unwrap();
        let d = c.get(&c.default).unwrap();
        assert_eq!(
            d.url(),
            "assets/models/SmolLM2-135M-Instruct.Q4_1.gguf?sha256=b179c9523d0e6a0f"
        );
        assert!(d.describe().contains("98.4 MB"));
        assert!(Catalog::parse("[]").is_err());
    }

    #[test]
    fn local_keys_are_url_safe() {
        assert!(is_local_key(&local_cache_key("m.gguf", 1, 2)));
        assert!(is_local_key(
            "http://127.0.0.1:8080/local-models/1-2/m.gguf"
        ));
        assert!(!is_local_key(
            "assets/models/SmolLM2-135M-Instruct-Q4_1.gguf"
        ));
        assert_eq!(
            local_cache_key("my model (1).gguf", 42, 7),
            "local-models/42-7/my_model__1_.gguf"
        );
        assert_eq!(
            local_cache_key("<script>.gguf", 1, 0),
            "local-models/1-0/_script_.gguf"
        );
    }
}
