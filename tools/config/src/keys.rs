//! `llm-router-config keys …`: a fresh virtual key with its `keys:` entry,
//! and LiteLLM's key list turned into `keys:` entries. Only hashes are
//! written: llm-router never needs a plain key in its configuration.

use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

pub const USAGE: &str = "\
usage: llm-router-config keys new --alias NAME [--models M1,M2] [--team TEAM] [--user USER]
       llm-router-config keys import FILE.json

  keys new     prints a `keys:` entry holding the SHA-256 of a fresh random key
               (`sk-` and 32 bytes of the OS's randomness); the key itself goes to
               standard error, once: give it to the team, it is not kept anywhere
  keys import  turns LiteLLM's /key/list?return_full_object=true output (or its
               LiteLLM_VerificationToken rows as a JSON array) into `keys:` entries,
               hashes kept";

/// LiteLLM's key fields that carry over, in the order written.
const CARRIED: &[&str] = &[
    "key_alias",
    "token",
    "models",
    "team_id",
    "user_id",
    "expires",
    "blocked",
    "metadata",
    "rpm_limit",
    "tpm_limit",
    "max_budget",
    "budget_duration",
    "model_rpm_limit",
    "model_tpm_limit",
];

/// What `keys` prints: the entries (standard output) and a note for
/// standard error.
pub struct Printed {
    pub entries: String,
    pub note: String,
}

pub fn run(args: &[String], read: &dyn Fn(&str) -> std::io::Result<String>) -> Result<Printed, String> {
    match args.split_first() {
        Some((command, rest)) if command == "new" => new_key(rest, &random_key()?),
        Some((command, [file])) if command == "import" => {
            let text = read(file).map_err(|e| format!("{file}: {e}"))?;
            import(&text).map_err(|e| format!("{file}: {e}"))
        }
        _ => Err(String::new()),
    }
}

fn random_key() -> Result<String, String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| format!("no randomness from the OS: {e}"))?;
    Ok(format!("sk-{}", base62(&bytes)))
}

/// Base62 of a big-endian number: letters and digits only, so the key
/// survives any shell, header or YAML unquoted.
fn base62(bytes: &[u8]) -> String {
    const DIGITS: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut number = bytes.to_vec();
    let mut out = Vec::new();
    while number.iter().any(|&b| b != 0) {
        let mut remainder = 0u32;
        for byte in number.iter_mut() {
            let value = (remainder << 8) | u32::from(*byte);
            *byte = u8::try_from(value / 62).unwrap_or(0);
            remainder = value % 62;
        }
        out.push(DIGITS.get(remainder as usize).copied().unwrap_or(b'0'));
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

fn sha256_hex(key: &str) -> String {
    Sha256::digest(key.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn new_key(args: &[String], key: &str) -> Result<Printed, String> {
    let mut entry = Map::new();
    let mut args = args.iter();
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let (field, value) = match flag.as_str() {
            "--alias" => ("key_alias", json!(value)),
            "--models" => (
                "models",
                json!(value
                    .split(',')
                    .map(str::trim)
                    .filter(|m| !m.is_empty())
                    .collect::<Vec<_>>()),
            ),
            "--team" => ("team_id", json!(value)),
            "--user" => ("user_id", json!(value)),
            _ => return Err(format!("unknown option {flag}")),
        };
        entry.insert(field.to_owned(), value);
    }
    let Some(alias) = entry.get("key_alias").and_then(Value::as_str).map(str::to_owned) else {
        return Err("keys new needs --alias NAME".to_owned());
    };
    entry.insert("token".to_owned(), json!(sha256_hex(key)));
    Ok(Printed {
        entries: entries(&[Value::Object(entry)]),
        note: format!("key for `{alias}` (shown once, kept nowhere: give it to its owner): {key}"),
    })
}

fn import(text: &str) -> Result<Printed, String> {
    let value: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let rows = match &value {
        Value::Array(rows) => rows,
        Value::Object(object) => object
            .get("keys")
            .and_then(Value::as_array)
            .ok_or("expected LiteLLM's /key/list output (an object with `keys`) or an array of key rows")?,
        _ => return Err("expected a JSON object or array".to_owned()),
    };
    let mut imported = Vec::new();
    let mut skipped = 0;
    for row in rows {
        // `/key/list` without `return_full_object` gives hashes as strings.
        let row = match row {
            Value::String(token) => json!({"token": token}),
            row => row.clone(),
        };
        let token = row.get("token").and_then(Value::as_str).unwrap_or_default();
        if token.len() != 64 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
            skipped += 1;
            continue;
        }
        let entry: Map<String, Value> = CARRIED
            .iter()
            .filter_map(|&field| {
                let value = row.get(field)?;
                let empty = value.is_null()
                    || value.as_array().is_some_and(Vec::is_empty)
                    || value.as_object().is_some_and(Map::is_empty);
                (!empty).then(|| (field.to_owned(), value.clone()))
            })
            .collect();
        imported.push(Value::Object(entry));
    }
    let mut note = format!("{} keys imported", imported.len());
    if skipped > 0 {
        note.push_str(&format!("; {skipped} rows without a SHA-256 `token` left out"));
    }
    Ok(Printed {
        entries: entries(&imported),
        note,
    })
}

/// `keys:` entries, one a line (JSON is YAML): append them under `keys:`.
fn entries(entries: &[Value]) -> String {
    let mut out = String::from("keys:\n");
    for entry in entries {
        out.push_str(&format!("  - {entry}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_key_is_printed_once_and_only_its_hash_kept() {
        let printed = new_key(
            &[
                "--alias",
                "team-a-dev",
                "--models",
                "anthropic/*, gpt-4o",
                "--team",
                "team-a",
            ]
            .map(String::from),
            "sk-example",
        )
        .expect("an entry");
        assert_eq!(
            printed.entries,
            format!(
                "keys:\n  - {{\"key_alias\":\"team-a-dev\",\"models\":[\"anthropic/*\",\"gpt-4o\"],\"team_id\":\"team-a\",\"token\":\"{}\"}}\n",
                sha256_hex("sk-example")
            )
        );
        assert!(!printed.entries.contains("sk-example"));
        assert!(printed.note.ends_with("sk-example"));
        assert!(new_key(&[], "k").is_err(), "an alias is required");
    }

    #[test]
    fn fresh_keys_are_random_and_plain() {
        let (a, b) = (random_key().expect("key"), random_key().expect("key"));
        assert_ne!(a, b);
        assert!(
            a.starts_with("sk-") && a.len() > 40 && a[3..].bytes().all(|c| c.is_ascii_alphanumeric()),
            "{a}"
        );
        assert_eq!(base62(&[0, 61]), "z");
        assert_eq!(base62(&[0, 62]), "10");
    }

    #[test]
    fn litellms_key_list_is_imported_with_its_hashes() {
        let token = sha256_hex("sk-litellm");
        let list = format!(
            r#"{{"keys": [{{"token": "{token}", "key_alias": "prod", "key_name": "sk-...abcd", "models": ["gpt-4o"], "team_id": "t1", "spend": 3.2, "max_budget": 10.0, "budget_duration": "30d", "expires": null, "blocked": null, "metadata": {{}}}},
              {{"token": "not-a-hash", "key_alias": "broken"}}], "total_count": 2}}"#
        );
        let printed = import(&list).expect("imports");
        assert_eq!(
            printed.entries,
            format!("keys:\n  - {{\"key_alias\":\"prod\",\"token\":\"{token}\",\"models\":[\"gpt-4o\"],\"team_id\":\"t1\",\"max_budget\":10.0,\"budget_duration\":\"30d\"}}\n")
        );
        assert_eq!(
            printed.note,
            "1 keys imported; 1 rows without a SHA-256 `token` left out"
        );
        let rows = format!(r#"[{{"token": "{token}"}}]"#);
        assert!(import(&rows).expect("rows").entries.contains(&token));
    }
}
