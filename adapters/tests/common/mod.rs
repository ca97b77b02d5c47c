//! Helpers shared by the adapter fuzz tests: JSON tree edits for mutating recorded payloads.
#![allow(dead_code)] // each test file uses a different subset

use serde_json::Value;

/// Number of nodes in a JSON tree (objects' fields and arrays' items).
pub fn count(v: &Value) -> usize {
    match v {
        Value::Object(m) => m.values().map(|c| 1 + count(c)).sum(),
        Value::Array(a) => a.iter().map(|c| 1 + count(c)).sum(),
        _ => 0,
    }
}

/// Delete (`replace = None`) or replace the `n`-th node; returns whether it was found.
pub fn edit(v: &mut Value, n: &mut usize, replace: &Option<Value>) -> bool {
    match v {
        Value::Object(m) => {
            let keys: Vec<String> = m.keys().cloned().collect();
            for k in keys {
                if *n == 0 {
                    match replace {
                        Some(r) => {
                            m.insert(k, r.clone());
                        }
                        None => {
                            m.remove(&k);
                        }
                    }
                    return true;
                }
                *n -= 1;
                if let Some(child) = m.get_mut(&k)
                    && edit(child, n, replace)
                {
                    return true;
                }
            }
            false
        }
        Value::Array(a) => {
            for i in 0..a.len() {
                if *n == 0 {
                    match replace {
                        Some(r) => a[i] = r.clone(),
                        None => {
                            a.remove(i);
                        }
                    }
                    return true;
                }
                *n -= 1;
                if edit(&mut a[i], n, replace) {
                    return true;
                }
            }
            false
        }
        _ => false,
    }
}
