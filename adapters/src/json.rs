//! A small JSON object writer for request bodies whose key order matters (venue docs show
//! them in a fixed order and the signature covers the exact text), shared by the OKX and Kraken
//! request builders.

/// `{"k":v,...}` built key by key, in insertion order.
#[derive(Default)]
pub(crate) struct Obj(String);

impl Obj {
    /// Adds `key` with `raw` as its already-encoded JSON value.
    pub(crate) fn raw(mut self, key: &str, raw: &str) -> Self {
        self.0.push(if self.0.is_empty() { '{' } else { ',' });
        self.0.push_str(&json_string(key));
        self.0.push(':');
        self.0.push_str(raw);
        self
    }

    /// Adds `key` with a string value.
    pub(crate) fn str(self, key: &str, value: &str) -> Self {
        let v = json_string(value);
        self.raw(key, &v)
    }

    pub(crate) fn done(mut self) -> String {
        if self.0.is_empty() {
            self.0.push('{');
        }
        self.0.push('}');
        self.0
    }
}

/// `s` as a JSON string literal.
pub(crate) fn json_string(s: &str) -> String {
    // Serializing a str cannot fail; the fallback only keeps this total.
    serde_json::to_string(s).unwrap_or_else(|_| String::from("\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_key_order_and_escapes() {
        let o = Obj::default()
            .str("instId", "BTC-USDT")
            .raw("sz", "\"1\"")
            .str("note", "a\"b\\c\n")
            .done();
        assert_eq!(o, r#"{"instId":"BTC-USDT","sz":"1","note":"a\"b\\c\n"}"#);
        assert_eq!(Obj::default().done(), "{}");
    }
}
