//! Test vectors (`docs/protocol.md`, "Test vectors"), shared by the unit tests of every
//! `snap` module so each value is written down exactly once.

/// Test-only RSA-2048 key (PKCS#8) generated for the dossier; no production use.
pub const TEST_PRIVATE_KEY_PEM: &str = "-----BEGIN PRIVATE KEY-----
MIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQCvgw3kMEOgfTqu
Ios06+FNdwbZro2/darUmpLciGyeOTlVU/lRetyGS39AYRgWEwu2Ol5xBvYfyS6+
MUbo3vcPEMTDOHLtxotRZdkOhlZDspx9TUyxZWgjjtQP5agL79EKmLvs2N9sJlRF
f/OriwOdAkC8jacy5U+A+WDVvtKDsEf4HK5oqXMsFl0sCbPuS18Hjh9VBalyJQ33
qWlUXH49+eWjhqQCYiKK1SNFR8d5AsYuRA0MFQ6CzOpR4zuPmtZs4AM7cMeIJ4yD
6A+GtohrhJxPfSV3KEXsrHkkRXfxyd8dByLMjdXKjBQmg7cSXLz09pxeBNxAtKNy
iiacwQJVAgMBAAECggEAD37IiS7hqZekyJ7wH1n76DTr++f3R8IBtQd4k9PPkyCG
OUxSpKjuM0UTFQH9eGVyEUKR9/SfYisG32/GTOTydvgKBxpCu09eGW+efDPMBeoM
+tsKPFcxnIINouGptnQTxpW5ca2r/AZeRkyHnMuHJCOAx6TR8CJipIZf0D8qosmV
z0T/n1JyATabruSEZ3P6qyfre0FdPWAzxvjUAkSUXiqq6EFyufh6qfG2IG30a0hI
s/ArXd7wzkAxqz/aYqRB9GfAmS5VZBUCxmSOsWHw92qSN6cKBNPOBKZOtgjaVfXP
N0AlQictHg954nfYvlVcqXiU71evKDO5t1yw01rAuQKBgQDrQH+JH26XMhD2V4EW
vJxeEiRcv3t+5hzLqEXBT9Jpws8s7a9hKoS3dijWvFIG4hUlLUnW/7Z8Ym8qK2d3
gKcvJRGloI2YO4Qhe5W5RqzJunGSRu86ClsunT/peQr+hSp8KMeI7f/9Vld6ncTw
KuFMSSWsCtVACCAhLFFLhgUYlwKBgQC+/cAPPO1IqCQoBlgnJoRYsKF68bVTwBa4
ZD76cQBcvnYnz+31nh3Pf1/t7vwWBAEvjO3adb8r3k8QnKNWOJoTYqGiUe5PIx54
ERyTZiYicp8LtG8NJTiRfnxt2csMuSjY3Rerdy3d4rPZml3T0NMAKgkckrGq6lD+
uxlBvA0N8wKBgQC8z0RM0pxY3wb8H5jsna5GVfs3MTu1yow77C8oCp+O4JqUraM/
sfdYo439YqHXAmcEMof79boJtJsR1koxgGEuFmtGakiacNIIaX7ud8nAElKKm0Hv
bFZoYC7mfI6VXl2NztDulk4Jjt2g/LUOKOwv5NlGbl9fB+Z5mW8Z1VOLuwKBgE9F
/6vTfCHGOIusZnaJlDFDzyK6pKrIdiW+5i0JLj9QhrZrpbdnE7SGiAi4Q0XYD63u
7uLYMKtCsMqSWXF2OO2G6NP48dNDHmhzocrEgVuW+9Dd6aIpKtupBniKB6+WQxAQ
ZLy00QLiEAhn/D3o1UuiJvoHIVtxuoCgpBEWvsxlAoGBAL0pe16FOll0KIOnZVSM
iS8T5DpDnaIvtbhU6lLEmlpzRpKhagOgMHDWKn4v0ttvlSsB8zzl97LV7T2oafSf
tWQdOZ76zr7FFlVRqrJX5420XdC9ECPPZ6+N7zxTH/KpmPes+LowfBIvVdULIcLG
txf5hb/duXmZF0qbZpiCwKpc
-----END PRIVATE KEY-----
";

/// SPKI public half of [`TEST_PRIVATE_KEY_PEM`].
pub const TEST_PUBLIC_KEY_PEM: &str = "-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAr4MN5DBDoH06riKLNOvh
TXcG2a6Nv3Wq1JqS3Ihsnjk5VVP5UXrchkt/QGEYFhMLtjpecQb2H8kuvjFG6N73
DxDEwzhy7caLUWXZDoZWQ7KcfU1MsWVoI47UD+WoC+/RCpi77NjfbCZURX/zq4sD
nQJAvI2nMuVPgPlg1b7Sg7BH+ByuaKlzLBZdLAmz7ktfB44fVQWpciUN96lpVFx+
Pfnlo4akAmIiitUjRUfHeQLGLkQNDBUOgszqUeM7j5rWbOADO3DHiCeMg+gPhraI
a4ScT30ldyhF7Kx5JEV38cnfHQcizI3VyowUJoO3Ely89PacXgTcQLSjcoomnMEC
VQIDAQAB
-----END PUBLIC KEY-----
";

pub const CLIENT_SECRET: &str = "TEST-ONLY-client-secret-0123456789";
pub const ACCESS_TOKEN: &str = "gp9HjjEj813Y9JGoqwOeOPWbnt4CUpvIJbU1mMU4a11MNDZ7Sg5u9a";
pub const CLIENT_ID: &str = "FINPAY-PARTNER-ID";

/// Vector V2 body: the docs.finpay.id generate sample, compact as published.
pub const V2_BODY: &str = r#"{"partnerReferenceNo":"INV112024033108340012600007","amount":{"value":"10000.00","currency":"IDR"},"FeeAmount":{"value":"0.00","currency":"IDR"},"merchantId":"FM2103300001","subMerchantId":"FM2007160001","terminalId":"213141251124","validityPeriod":"2024-04-17T12:03:38-07:00","additionalInfo":{"tipsIndikator":"00","tipsFixamount":"0","tipsPercentage":"0","note":"","qrType":"12","callbackUrl":"https://demos.finnet.co.id/apiqrismerchanct/qr/callback-qris-static/index.php"}}"#;

/// Vector V3 body: the hub.finpay.id notify sample, minified with key order kept.
pub const V3_BODY: &str = r#"{"originalReferenceNo":"2020102977770000000009","originalPartnerReferenceNo":"2020102900000000000001","latestTransactionStatus":"00","transactionStatusDesc":"success","amount":{"value":"12345678.00","currency":"IDR"},"additionalInfo":{"cust_name":"CANDRA GUNAWAN GAHO","merchantName":"BB011 WARTEG MUSTIKA","rrn":"000019001390","nns_issuer":"93600014","nns_acquirer":"93600777","mpan":"9360077732302230011","cpan":"9360001410190013903","nmid":"ID1023249949984","sof_id":"qr_statis","invoice":"2020102900000000000001","issuer":"BCA","acquirer":"Finpay","note":"Transaction Remark","merchantId":"FM1234567700","FeeAmount":{"value":"1234.00","currency":"IDR"},"paidTime":"2024-06-07T10:03:54+07:00","qr_type":"12","tips_indikator":"00"}}"#;

/// V3 body as Python's `json.dumps(obj, indent=2)` prints it (no trailing newline).
pub const V3_PRETTY: &str = r#"{
  "originalReferenceNo": "2020102977770000000009",
  "originalPartnerReferenceNo": "2020102900000000000001",
  "latestTransactionStatus": "00",
  "transactionStatusDesc": "success",
  "amount": {
    "value": "12345678.00",
    "currency": "IDR"
  },
  "additionalInfo": {
    "cust_name": "CANDRA GUNAWAN GAHO",
    "merchantName": "BB011 WARTEG MUSTIKA",
    "rrn": "000019001390",
    "nns_issuer": "93600014",
    "nns_acquirer": "93600777",
    "mpan": "9360077732302230011",
    "cpan": "9360001410190013903",
    "nmid": "ID1023249949984",
    "sof_id": "qr_statis",
    "invoice": "2020102900000000000001",
    "issuer": "BCA",
    "acquirer": "Finpay",
    "note": "Transaction Remark",
    "merchantId": "FM1234567700",
    "FeeAmount": {
      "value": "1234.00",
      "currency": "IDR"
    },
    "paidTime": "2024-06-07T10:03:54+07:00",
    "qr_type": "12",
    "tips_indikator": "00"
  }
}"#;

pub const V3_HASH: &str = "3145a68d66e10e15f394d503473688671739af047eaa0f56602adbd48aea1008";
pub const V3_TIMESTAMP: &str = "2024-06-07T10:03:55+07:00";
