//! QRIS payloads: EMVCo merchant-presented QR (MPM) tag-length-value data
//! with the CRC-16/CCITT-FALSE checksum in tag 63, as printed in the QR
//! codes Indonesian wallets scan.

/// What the simulator puts into a dynamic QR.
pub struct QrisFields<'a> {
    pub merchant_name: &'a str,
    pub merchant_city: &'a str,
    pub merchant_id: &'a str,
    pub nmid: &'a str,
    /// SNAP amount string, e.g. `10000.00`.
    pub amount: &'a str,
    /// Bill number: our partnerReferenceNo.
    pub bill_number: &'a str,
    /// Reference label: Finpay's referenceNo.
    pub reference: &'a str,
    pub terminal: &'a str,
    pub tip: Tip<'a>,
}

pub enum Tip<'a> {
    None,
    /// Tag 55 `01`: the wallet asks the customer for a tip.
    Prompt,
    /// Tag 55 `02` with tag 56.
    Fixed(&'a str),
    /// Tag 55 `03` with tag 57.
    Percentage(&'a str),
}

/// Globally unique identifier of the national QRIS scheme.
const QRIS_GUID: &str = "ID.CO.QRIS.WWW";
/// Merchant category code (restaurants).
const MCC: &str = "5812";
/// ISO 4217 numeric code of IDR.
const CURRENCY_IDR: &str = "360";
/// The acquirer's national network number prefix of the merchant PAN (Finpay: 93600777).
const NNS_FINPAY: &str = "93600777";

/// One TLV field; values are cut to the 99 characters a 2-digit length allows
/// (and to `max` for fields with a tighter limit), and kept to printable
/// ASCII so that lengths in characters and in bytes agree.
fn tlv(out: &mut String, tag: &str, value: &str, max: usize) {
    let value: String = value
        .chars()
        .filter(|c| c.is_ascii() && !c.is_ascii_control())
        .take(max.min(99))
        .collect();
    out.push_str(tag);
    out.push_str(&format!("{:02}", value.chars().count()));
    out.push_str(&value);
}

/// Builds a dynamic (point-of-initiation `12`) QRIS payload.
pub fn dynamic_qr(f: &QrisFields<'_>) -> String {
    let mut account = String::new();
    tlv(&mut account, "00", QRIS_GUID, 32);
    tlv(
        &mut account,
        "01",
        &format!("{NNS_FINPAY}{:0>10}", digits(f.merchant_id)),
        19,
    );
    tlv(&mut account, "02", f.merchant_id, 15);
    tlv(&mut account, "03", "UMI", 3);
    let mut national = String::new();
    tlv(&mut national, "00", QRIS_GUID, 32);
    tlv(&mut national, "02", f.nmid, 15);
    tlv(&mut national, "03", "UMI", 3);
    let mut additional = String::new();
    tlv(&mut additional, "01", f.bill_number, 25);
    tlv(&mut additional, "05", f.reference, 25);
    tlv(&mut additional, "07", f.terminal, 25);

    let mut qr = String::new();
    tlv(&mut qr, "00", "01", 2);
    tlv(&mut qr, "01", "12", 2);
    tlv(&mut qr, "26", &account, 99);
    tlv(&mut qr, "51", &national, 99);
    tlv(&mut qr, "52", MCC, 4);
    tlv(&mut qr, "53", CURRENCY_IDR, 3);
    tlv(&mut qr, "54", f.amount, 13);
    match f.tip {
        Tip::None => {}
        Tip::Prompt => tlv(&mut qr, "55", "01", 2),
        Tip::Fixed(v) => {
            tlv(&mut qr, "55", "02", 2);
            tlv(&mut qr, "56", v, 13);
        }
        Tip::Percentage(p) => {
            tlv(&mut qr, "55", "03", 2);
            tlv(&mut qr, "57", p, 5);
        }
    }
    tlv(&mut qr, "58", "ID", 2);
    tlv(&mut qr, "59", f.merchant_name, 25);
    tlv(&mut qr, "60", f.merchant_city, 15);
    tlv(&mut qr, "62", &additional, 99);
    // The checksum covers everything before it, its own tag and length included.
    qr.push_str("6304");
    let crc = crc16_ccitt_false(qr.as_bytes());
    qr.push_str(&format!("{crc:04X}"));
    qr
}

fn digits(s: &str) -> String {
    s.chars().filter(char::is_ascii_digit).take(10).collect()
}

/// CRC-16/CCITT-FALSE: polynomial 0x1021, initial value 0xFFFF, no
/// reflection, no final XOR (the checksum EMVCo specifies).
pub fn crc16_ccitt_false(data: &[u8]) -> u16 {
    let mut crc: u16 = 0xFFFF;
    for &byte in data {
        crc ^= u16::from(byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// Splits a payload into its top-level `(tag, value)` fields and checks the
/// CRC; for tests and for anyone debugging a QR string.
pub fn parse(payload: &str) -> Result<Vec<(String, String)>, String> {
    let mut fields = Vec::new();
    let mut rest = payload;
    while !rest.is_empty() {
        let tag = rest.get(0..2).ok_or("truncated tag")?;
        let len: usize = rest
            .get(2..4)
            .ok_or("truncated length")?
            .parse()
            .map_err(|_| format!("bad length after tag {tag}"))?;
        let value = rest
            .get(4..4 + len)
            .ok_or_else(|| format!("tag {tag} runs past the end"))?;
        fields.push((tag.to_string(), value.to_string()));
        rest = &rest[4 + len..];
    }
    let Some((tag, crc)) = fields.last() else {
        return Err("empty payload".into());
    };
    if tag != "63" {
        return Err("the last field must be the CRC (tag 63)".into());
    }
    let covered = payload.get(..payload.len() - 4).ok_or("payload too short")?;
    let expected = format!("{:04X}", crc16_ccitt_false(covered.as_bytes()));
    if *crc != expected {
        return Err(format!("CRC {crc} does not match {expected}"));
    }
    Ok(fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields() -> QrisFields<'static> {
        QrisFields {
            merchant_name: "WARTEG MUSTIKA",
            merchant_city: "JAKARTA",
            merchant_id: "FM2103300001",
            nmid: "ID1023249949984",
            amount: "10000.00",
            bill_number: "INV112024033108340012600007",
            reference: "2020102977770000000009",
            terminal: "213141251124",
            tip: Tip::None,
        }
    }

    #[test]
    fn crc_matches_the_published_check_value() {
        assert_eq!(crc16_ccitt_false(b"123456789"), 0x29B1);
        assert_eq!(crc16_ccitt_false(b""), 0xFFFF);
    }

    #[test]
    fn dynamic_qr_is_well_formed_tlv_with_a_valid_crc() {
        let qr = dynamic_qr(&fields());
        let parsed = parse(&qr).unwrap();
        let get = |t: &str| parsed.iter().find(|(tag, _)| tag == t).map(|(_, v)| v.as_str());
        assert!(qr.starts_with("000201010212"));
        assert_eq!(get("53"), Some("360"));
        assert_eq!(get("54"), Some("10000.00"));
        assert_eq!(get("58"), Some("ID"));
        assert!(get("26").unwrap().contains("ID.CO.QRIS.WWW"));
        // Bill numbers longer than the 25 characters QRIS allows are cut, not overflowed.
        assert!(get("62").unwrap().starts_with("0125INV1120240331083400126"));
        assert_eq!(parsed.last().unwrap().1.len(), 4);
    }

    #[test]
    fn a_changed_character_breaks_the_crc() {
        let qr = dynamic_qr(&fields()).replace("10000.00", "90000.00");
        assert!(parse(&qr).unwrap_err().contains("CRC"));
    }

    #[test]
    fn tips_use_tags_55_to_57() {
        let mut f = fields();
        f.tip = Tip::Fixed("5000.00");
        let parsed = parse(&dynamic_qr(&f)).unwrap();
        assert!(parsed.contains(&("55".into(), "02".into())));
        assert!(parsed.contains(&("56".into(), "5000.00".into())));
    }
}
