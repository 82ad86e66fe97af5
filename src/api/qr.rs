//! A payment's QR code as SVG (for screens) or PNG (for receipts), rendered
//! from the stored `qrContent`. The QRIS payload is encoded with error
//! correction level M and a quiet zone of four modules.

use super::error::{ApiError, Problem};
use super::extract::{ApiPath, ApiQuery};
use super::payments::find;
use crate::state::AppState;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use qrcode::{Color, EcLevel, QrCode};
use serde::Deserialize;
use utoipa::IntoParams;

const QUIET_ZONE: usize = 4;
const DEFAULT_SCALE: usize = 8;
const MAX_SCALE: usize = 16;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PngParams {
    /// Pixels per QR module, 1–16 (default 8).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 16)]
    scale: Option<String>,
}

/// The payment's QR code as SVG
#[utoipa::path(
    get,
    path = "/payments/{id}/qr.svg",
    tag = "payments",
    params(("id" = String, Path, description = "Our id, or the partnerReferenceNo; no control characters", pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]+$")),
    responses(
        (status = 200, description = "SVG image", content_type = "image/svg+xml", body = String),
        (status = 400, description = "A control character in `id`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such payment, or it has no QR", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn qr_svg(State(st): State<AppState>, ApiPath(id): ApiPath<String>) -> Result<Response, ApiError> {
    let code = code_of(&st, &id).await?;
    let svg = code
        .render::<qrcode::render::svg::Color>()
        .quiet_zone(true)
        .min_dimensions(256, 256)
        .build();
    Ok(image("image/svg+xml", svg.into_bytes()))
}

/// The payment's QR code as PNG
#[utoipa::path(
    get,
    path = "/payments/{id}/qr.png",
    tag = "payments",
    params(("id" = String, Path, description = "Our id, or the partnerReferenceNo; no control characters", pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]+$"), PngParams),
    responses(
        (status = 200, description = "PNG image (8-bit greyscale)", content_type = "image/png", body = Vec<u8>),
        (status = 400, description = "Bad `scale`, or a control character in `id`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such payment, or it has no QR", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn qr_png(
    State(st): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<PngParams>,
) -> Result<Response, ApiError> {
    let scale = match q.scale.as_deref() {
        None => DEFAULT_SCALE,
        Some(s) => s
            .parse::<usize>()
            .ok()
            .filter(|s| (1..=MAX_SCALE).contains(s))
            .ok_or_else(|| {
                ApiError::bad_request(format!("scale must be a whole number from 1 to {MAX_SCALE}")).field("scale")
            })?,
    };
    let code = code_of(&st, &id).await?;
    let png = encode_png(&code, scale).map_err(|e| {
        tracing::error!(error = %e, "PNG encoding failed");
        ApiError::internal()
    })?;
    Ok(image("image/png", png))
}

async fn code_of(st: &AppState, id: &str) -> Result<QrCode, ApiError> {
    let payment = find(st, id).await?;
    let Some(content) = payment.qr_content.as_deref().filter(|c| !c.is_empty()) else {
        return Err(ApiError::new(StatusCode::NOT_FOUND, "qr-not-found", "No QR code")
            .detail("this payment has no QR code (not generated yet, or learnt from a static-QR notification)")
            .payment(&payment.id));
    };
    QrCode::with_error_correction_level(content.as_bytes(), EcLevel::M).map_err(|e| {
        tracing::error!(payment_id = %payment.id, error = %e, "stored qrContent cannot be encoded as a QR code");
        ApiError::internal()
    })
}

fn image(content_type: &'static str, bytes: Vec<u8>) -> Response {
    // The QR of a payment never changes once generated.
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "private, max-age=300"),
        ],
        bytes,
    )
        .into_response()
}

/// 8-bit greyscale PNG: black modules on white, `scale` pixels each.
fn encode_png(code: &QrCode, scale: usize) -> Result<Vec<u8>, png::EncodingError> {
    let modules = code.width();
    let colors = code.to_colors();
    let side = (modules + 2 * QUIET_ZONE) * scale;
    let mut pixels = vec![255u8; side * side];
    for (i, c) in colors.iter().enumerate() {
        if *c != Color::Dark {
            continue;
        }
        let (mx, my) = (i % modules + QUIET_ZONE, i / modules + QUIET_ZONE);
        for y in my * scale..(my + 1) * scale {
            pixels[y * side + mx * scale..y * side + (mx + 1) * scale].fill(0);
        }
    }
    let mut out = Vec::new();
    let side32 = u32::try_from(side).unwrap_or(u32::MAX);
    let mut enc = png::Encoder::new(&mut out, side32, side32);
    enc.set_color(png::ColorType::Grayscale);
    enc.set_depth(png::BitDepth::Eight);
    let mut writer = enc.write_header()?;
    writer.write_image_data(&pixels)?;
    writer.finish()?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn png_has_the_qr_geometry() {
        let code = QrCode::with_error_correction_level(b"00020101021226", EcLevel::M).unwrap();
        let png = encode_png(&code, 3).unwrap();
        let decoder = png::Decoder::new(std::io::Cursor::new(png));
        let reader = decoder.read_info().unwrap();
        let side = (code.width() + 2 * QUIET_ZONE) * 3;
        assert_eq!(reader.info().width as usize, side);
        assert_eq!(reader.info().height as usize, side);
    }
}
