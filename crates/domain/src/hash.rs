//! Stable content hashes: the derived financing `deal_id` of `sources.md`.

use sha2::{Digest, Sha256};

/// Hex of the first `n_bytes` bytes of the SHA-256 of `text`.
pub fn sha256_hex_prefix(text: &str, n_bytes: usize) -> String {
    let digest = Sha256::digest(text.as_bytes());
    digest[..n_bytes.min(32)]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The derived `deal_id`: the first 16 hex characters of the SHA-256 of
/// `uscc|occurred_on|instrument|amount|institution` in canonical form (linked USCC,
/// ISO date, amount in 元 with two decimals, empty string for a null institution).
pub fn deal_id(
    uscc: &str,
    occurred_on: &str,
    instrument: &str,
    amount_cents: i128,
    institution: Option<&str>,
) -> String {
    let text = format!(
        "{uscc}|{occurred_on}|{instrument}|{}|{}",
        crate::number::format_cents(amount_cents),
        institution.unwrap_or("")
    );
    sha256_hex_prefix(&text, 8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deal_id_is_the_sha256_prefix() {
        // sha256("a") = ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb
        assert_eq!(sha256_hex_prefix("a", 8), "ca978112ca1bbdca");
        let id = deal_id(
            "91310110666007217T",
            "2023-05-01",
            "bank_loan",
            1_000_000,
            None,
        );
        assert_eq!(id.len(), 16);
        assert_eq!(
            id,
            sha256_hex_prefix("91310110666007217T|2023-05-01|bank_loan|10000.00|", 8)
        );
    }
}
