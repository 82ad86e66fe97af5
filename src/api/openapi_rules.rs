//! Request constraints that the handlers enforce and `#[schema(...)]`
//! attributes cannot say: the exact shape of amounts, what a tip needs per
//! mode, `validitySeconds` and `validUntil` not together, no control
//! characters in free text.
//!
//! utoipa has no field for JSON Schema's `not`; it is carried in the schema
//! object's extension map, which is serialized flat into the object.

use super::money::{AMOUNT_PATTERN, PERCENTAGE_PATTERN, ZERO_PATTERN};
use serde_json::{json, Value};
use utoipa::openapi::schema::{AdditionalProperties, Object, ObjectBuilder, OneOfBuilder, Schema, Type};
use utoipa::openapi::RefOr;
use utoipa::Modify;

/// Control characters (Unicode category Cc: what `char::is_control` refuses).
pub const CONTROL_PATTERN: &str = r"[\x00-\x1f\x7f-\x9f]";

pub struct Rules;

impl Modify for Rules {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let Some(components) = doc.components.as_mut() else {
            return;
        };
        let schemas = &mut components.schemas;
        if let Some(o) = object(schemas.get_mut("CreatePaymentRequest")) {
            amount(property(o, "amount"));
            if let Some(note) = property(o, "note") {
                no_control(note);
            }
            // Both given, and neither null: the handler answers 422 naming validUntil.
            not(
                o,
                json!({
                    "required": ["validitySeconds", "validUntil"],
                    "properties": {"validitySeconds": {"type": "integer"}, "validUntil": {"type": "string"}},
                }),
            );
        }
        if let Some(o) = object(schemas.get_mut("CreateRefundRequest")) {
            amount(property(o, "amount"));
            if let Some(reason) = property(o, "reason") {
                no_control(reason);
            }
        }
        if let Some(note) = object(schemas.get_mut("ResolveFlagRequest")).and_then(|o| property(o, "note")) {
            no_control(note);
        }
        for endpoint in ["CreateEndpointRequest", "UpdateEndpointRequest"] {
            if let Some(d) = object(schemas.get_mut(endpoint)).and_then(|o| property(o, "description")) {
                no_control(d);
            }
        }
        schemas.insert("TipsRequest".into(), RefOr::T(tips()));
        // Spelled out per variant now; nothing refers to it any more.
        schemas.remove("TipsMode");
    }
}

fn object(s: Option<&mut RefOr<Schema>>) -> Option<&mut Object> {
    match s {
        Some(RefOr::T(Schema::Object(o))) => Some(o),
        _ => None,
    }
}

fn property<'a>(o: &'a mut Object, name: &str) -> Option<&'a mut Object> {
    object(o.properties.get_mut(name))
}

/// Free text without control characters. The `not` names the type: a bare
/// `{"pattern": …}` holds for anything but a string, so `not` of it would
/// refuse `null`, which an optional field accepts.
fn no_control(o: &mut Object) {
    not(o, json!({"type": "string", "pattern": CONTROL_PATTERN}));
}

fn not(o: &mut Object, schema: Value) {
    o.extensions
        .get_or_insert_with(Default::default)
        .insert("not".into(), schema);
}

/// An amount string: the shape [`parse_minor`](super::money::parse_minor)
/// reads, and not zero.
fn amount(o: Option<&mut Object>) {
    if let Some(o) = o {
        o.pattern = Some(AMOUNT_PATTERN.into());
        not(o, json!({"pattern": ZERO_PATTERN}));
    }
}

/// `tips` as the handler reads it: one variant per mode, each with exactly
/// the field its mode needs (the others may only be null).
fn tips() -> Schema {
    let mode = |modes: &[&str]| {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(modes.iter().copied()))
    };
    let null = || ObjectBuilder::new().schema_type(Type::Null);
    let decimal = |pattern: &str, description: &str| {
        let mut o = ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(pattern))
            .description(Some(description))
            .build();
        not(&mut o, json!({"pattern": ZERO_PATTERN}));
        o
    };
    let closed = || Some(AdditionalProperties::FreeForm(false));
    let none = ObjectBuilder::new()
        .description(Some("`none`: no tip; `open`: the payer types the tip in their app"))
        .property("mode", mode(&["none", "open"]))
        .property("amount", null())
        .property("percentage", null())
        .required("mode")
        .additional_properties(closed());
    let fixed = ObjectBuilder::new()
        .description(Some("A fixed tip"))
        .property("mode", mode(&["fixed"]))
        .property("amount", decimal(AMOUNT_PATTERN, "The tip, as an amount string"))
        .property("percentage", null())
        .required("mode")
        .required("amount")
        .additional_properties(closed());
    let percentage = ObjectBuilder::new()
        .description(Some("A tip in percent of the amount"))
        .property("mode", mode(&["percentage"]))
        .property(
            "percentage",
            decimal(
                PERCENTAGE_PATTERN,
                "More than 0, at most 100, e.g. `\"10\"` or `\"12.50\"`",
            ),
        )
        .property("amount", null())
        .required("mode")
        .required("percentage")
        .additional_properties(closed());
    OneOfBuilder::new()
        .description(Some("Whether and how the payer may add a tip"))
        .item(none)
        .item(fixed)
        .item(percentage)
        .into()
}
