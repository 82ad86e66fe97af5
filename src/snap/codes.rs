//! SNAP response codes: HTTP status (3 digits) + service code (2) + case code (2).
//!
//! [`SnapStatus`] is what we answer with; [`ParsedCode`] is how we read a partner's
//! answer. Success is judged by HTTP status and case code only, because Finpay's
//! samples put the wrong service code in (`2005300` for a query, whose service is 51).

/// Service codes from the ASPI standard for the APIs this crate speaks.
pub mod service {
    pub const GENERATE: u8 = 47;
    pub const QUERY: u8 = 51;
    pub const NOTIFY: u8 = 52;
    pub const TOKEN: u8 = 73;
    pub const REFUND: u8 = 78;
}

/// A SNAP response status, ready to be rendered as `responseCode`/`responseMessage`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapStatus {
    pub http: u16,
    pub service: u8,
    pub case: u8,
    pub message: String,
}

impl SnapStatus {
    fn new(http: u16, service: u8, case: u8, message: impl Into<String>) -> Self {
        Self {
            http,
            service,
            case,
            message: message.into(),
        }
    }

    /// The 7-digit `responseCode`, e.g. `4005202`.
    pub fn code(&self) -> String {
        format!("{:03}{:02}{:02}", self.http, self.service, self.case)
    }

    pub fn successful(service: u8) -> Self {
        Self::new(200, service, 0, "Successful")
    }

    pub fn bad_request(service: u8, detail: Option<&str>) -> Self {
        match detail {
            Some(detail) => Self::new(400, service, 0, format!("Bad Request. {detail}")),
            None => Self::new(400, service, 0, "Bad Request"),
        }
    }

    /// The standard prints `{field}` as a placeholder; the braces are not sent.
    pub fn invalid_field_format(service: u8, field: &str) -> Self {
        Self::new(400, service, 1, format!("Invalid Field Format {field}"))
    }

    pub fn invalid_mandatory_field(service: u8, field: &str) -> Self {
        Self::new(400, service, 2, format!("Invalid Mandatory Field {field}"))
    }

    /// `Unauthorized. {reason}`, e.g. `Unauthorized. Invalid Signature`.
    pub fn unauthorized(service: u8, reason: &str) -> Self {
        Self::new(401, service, 0, format!("Unauthorized. {reason}"))
    }

    pub fn invalid_token(service: u8) -> Self {
        Self::new(401, service, 1, "Invalid Token (B2B)")
    }

    pub fn not_found(service: u8) -> Self {
        Self::new(404, service, 1, "Transaction Not Found")
    }

    pub fn conflict(service: u8) -> Self {
        Self::new(409, service, 0, "Conflict")
    }

    pub fn general_error(service: u8) -> Self {
        Self::new(500, service, 0, "General Error")
    }

    pub fn timeout(service: u8) -> Self {
        Self::new(504, service, 0, "Timeout")
    }
}

/// A partner's `responseCode`, split into its three parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParsedCode {
    pub http: u16,
    pub service: u8,
    pub case: u8,
}

/// Splits a `responseCode`; `None` unless it is exactly 7 ASCII digits.
pub fn parse_code(s: &str) -> Option<ParsedCode> {
    if s.len() != 7 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(ParsedCode {
        http: s.get(0..3)?.parse().ok()?,
        service: s.get(3..5)?.parse().ok()?,
        case: s.get(5..7)?.parse().ok()?,
    })
}

impl ParsedCode {
    /// `200xx00`, whatever the service digits say.
    pub fn is_success(&self) -> bool {
        self.http == 200 && self.case == 0
    }

    /// `202xx00`: accepted, outcome not known yet (query again later).
    pub fn is_in_progress(&self) -> bool {
        self.http == 202 && self.case == 0
    }

    /// `401xx01` (Invalid Token (B2B)) or `401xx03` (Invalid Customer Token): the
    /// cached access token should be dropped and a new one fetched.
    pub fn is_invalid_token(&self) -> bool {
        self.http == 401 && matches!(self.case, 1 | 3)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_http_service_and_case_digits() {
        assert_eq!(SnapStatus::successful(service::NOTIFY).code(), "2005200");
        assert_eq!(
            SnapStatus::invalid_mandatory_field(service::NOTIFY, "X-TIMESTAMP").code(),
            "4005202"
        );
        assert_eq!(SnapStatus::invalid_token(service::NOTIFY).code(), "4015201");
        assert_eq!(
            SnapStatus::unauthorized(service::TOKEN, "Invalid Signature").code(),
            "4017300"
        );
        assert_eq!(SnapStatus::conflict(service::NOTIFY).code(), "4095200");
        assert_eq!(SnapStatus::not_found(service::QUERY).code(), "4045101");
        assert_eq!(SnapStatus::general_error(service::REFUND).code(), "5007800");
        assert_eq!(SnapStatus::timeout(service::GENERATE).code(), "5044700");
    }

    #[test]
    fn messages_follow_the_standard_without_placeholder_braces() {
        let msg = |s: SnapStatus| s.message;
        assert_eq!(msg(SnapStatus::successful(52)), "Successful");
        assert_eq!(msg(SnapStatus::bad_request(52, None)), "Bad Request");
        assert_eq!(
            msg(SnapStatus::bad_request(52, Some("Body is not JSON"))),
            "Bad Request. Body is not JSON"
        );
        assert_eq!(
            msg(SnapStatus::invalid_field_format(52, "amount.value")),
            "Invalid Field Format amount.value"
        );
        assert_eq!(
            msg(SnapStatus::invalid_mandatory_field(52, "X-TIMESTAMP")),
            "Invalid Mandatory Field X-TIMESTAMP"
        );
        assert_eq!(
            msg(SnapStatus::unauthorized(73, "Invalid Signature")),
            "Unauthorized. Invalid Signature"
        );
        assert_eq!(msg(SnapStatus::invalid_token(52)), "Invalid Token (B2B)");
        assert_eq!(msg(SnapStatus::not_found(51)), "Transaction Not Found");
    }

    #[test]
    fn finpay_query_success_code_with_the_wrong_service_is_still_success() {
        let code = parse_code("2005300").unwrap();
        assert_eq!(
            code,
            ParsedCode {
                http: 200,
                service: 53,
                case: 0
            }
        );
        assert!(code.is_success());
        assert!(parse_code("2005100").unwrap().is_success());
        assert!(!parse_code("2005101").unwrap().is_success());
    }

    #[test]
    fn invalid_token_codes_are_recognised() {
        let code = parse_code("4015201").unwrap();
        assert!(code.is_invalid_token());
        assert!(!code.is_success());
        assert!(parse_code("4017303").unwrap().is_invalid_token());
        assert!(!parse_code("4017300").unwrap().is_invalid_token());
    }

    #[test]
    fn in_progress_is_202_case_00() {
        assert!(parse_code("2025100").unwrap().is_in_progress());
        assert!(!parse_code("2005100").unwrap().is_in_progress());
    }

    #[test]
    fn only_seven_ascii_digits_parse() {
        for bad in [
            "",
            "200530",
            "20053000",
            "2005a00",
            "+200530",
            " 2005300",
            "２００５３００",
            "200530\n",
        ] {
            assert_eq!(parse_code(bad), None, "{bad:?}");
        }
    }
}
