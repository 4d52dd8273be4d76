//! The few JSON shapes the edge answers with, written by hand: objects of strings, numbers
//! and arrays of objects. (The examples may use `bitcoin` and this crate only; a JSON crate
//! for four shapes would be the larger part of the component.)

use std::fmt::Write;

/// A JSON value.
#[derive(Debug, Clone)]
pub enum Value {
    /// A string, escaped on output.
    Str(String),
    /// An unsigned integer.
    Num(u64),
    /// An array.
    Array(Vec<Value>),
    /// An object, its fields in the order given.
    Object(Vec<(&'static str, Value)>),
}

impl Value {
    /// The compact JSON text.
    pub fn to_json(&self) -> String {
        let mut out = String::new();
        self.write(&mut out);
        out
    }

    fn write(&self, out: &mut String) {
        match self {
            Value::Str(text) => write_string(out, text),
            Value::Num(number) => {
                let _ = write!(out, "{number}");
            }
            Value::Array(items) => {
                out.push('[');
                for (index, item) in items.iter().enumerate() {
                    if index > 0 {
                        out.push(',');
                    }
                    item.write(out);
                }
                out.push(']');
            }
            Value::Object(fields) => {
                out.push('{');
                for (index, (name, value)) in fields.iter().enumerate() {
                    if index > 0 {
                        out.push(',');
                    }
                    write_string(out, name);
                    out.push(':');
                    value.write(out);
                }
                out.push('}');
            }
        }
    }
}

/// `text` as a JSON string: quotes, backslashes and control characters escaped.
fn write_string(out: &mut String, text: &str) {
    out.push('"');
    for ch in text.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            ch if u32::from(ch) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(ch));
            }
            ch => out.push(ch),
        }
    }
    out.push('"');
}
