//! passthrough, null, constant.

use crate::{BuildError, Built, ColumnContext, GenerateError, Generator, Prf, no_options, options};
use serde::Deserialize;
use std::sync::Arc;

struct Passthrough;

impl Generator for Passthrough {
    fn generate(&self, input: Option<&str>, out: &mut String) -> Result<bool, GenerateError> {
        match input {
            Some(v) => {
                out.push_str(v);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    fn is_passthrough(&self) -> bool {
        true
    }
}

pub(crate) fn passthrough(opts: &toml::Table, _: &ColumnContext, _: &Prf) -> Built {
    no_options("passthrough", opts)?;
    Ok(Arc::new(Passthrough))
}

struct Null;

impl Generator for Null {
    fn generate(&self, _: Option<&str>, _: &mut String) -> Result<bool, GenerateError> {
        Ok(false)
    }
}

pub(crate) fn null(opts: &toml::Table, ctx: &ColumnContext, _: &Prf) -> Built {
    no_options("null", opts)?;
    if ctx.not_null {
        return Err(BuildError::BadOption(
            "generator `null` cannot be used on a NOT NULL column; use `constant` or another generator"
                .into(),
        ));
    }
    Ok(Arc::new(Null))
}

struct Constant {
    value: String,
    keep_null: bool,
}

impl Generator for Constant {
    fn generate(&self, input: Option<&str>, out: &mut String) -> Result<bool, GenerateError> {
        if input.is_none() && self.keep_null {
            return Ok(false);
        }
        out.push_str(&self.value);
        Ok(true)
    }
}

pub(crate) fn constant(opts: &toml::Table, ctx: &ColumnContext, _: &Prf) -> Built {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Opts {
        value: toml::Value,
        #[serde(default = "yes")]
        keep_null: bool,
    }
    fn yes() -> bool {
        true
    }
    let o: Opts = options("constant", opts)?;
    let value = match o.value {
        toml::Value::String(s) => s,
        toml::Value::Integer(i) => i.to_string(),
        toml::Value::Float(f) => f.to_string(),
        toml::Value::Boolean(b) => b.to_string(),
        other => other.to_string(),
    };
    if let Some(max) = ctx.value_type.max_chars()
        && value.chars().count() > max as usize
    {
        return Err(BuildError::BadOption(format!(
            "generator `constant`: `value` has more than the column's {max} characters"
        )));
    }
    Ok(Arc::new(Constant {
        value,
        keep_null: o.keep_null,
    }))
}
