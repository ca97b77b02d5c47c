//! WebSocket protocol traffic: `op` replies (auth, subscribe, ping/pong, order entry) and the
//! option/spread `COMMAND_RESP` subscription reply. Small, rare messages: parsed as `Value`.

use serde_json::Value;

use super::rest::code_of;
use crate::model::{Control, DecodeError, VenueEvent};

pub(crate) fn str_of<'v>(v: &'v Value, key: &str) -> Option<&'v str> {
    v.get(key).and_then(Value::as_str)
}

/// Bybit spells the same fields two ways: `ret_msg`/`req_id` on the public and private streams,
/// `retMsg`/`reqId` on the order-entry stream.
fn msg_of(v: &Value) -> &str {
    str_of(v, "ret_msg")
        .or_else(|| str_of(v, "retMsg"))
        .unwrap_or("")
}

fn req_id_of(v: &Value) -> &str {
    str_of(v, "req_id")
        .or_else(|| str_of(v, "reqId"))
        .unwrap_or("")
}

/// Replies carry a result field; what we send (and the docs' request examples) do not.
fn is_reply(v: &Value) -> bool {
    [
        "success", "retCode", "ret_msg", "retMsg", "conn_id", "connId",
    ]
    .iter()
    .any(|k| v.get(k).is_some())
}

fn control(c: Control) -> Vec<VenueEvent> {
    vec![VenueEvent::Control(c)]
}

pub(crate) fn decode(v: &Value) -> Result<Vec<VenueEvent>, DecodeError> {
    let Some(op) = str_of(v, "op") else {
        if str_of(v, "type") == Some("COMMAND_RESP") {
            return command_resp(v);
        }
        return Err(DecodeError::malformed("bybit op", "not a string"));
    };
    if op == "pong" {
        // Private, option and order-entry streams answer a ping with op=pong.
        return Ok(control(Control::Pong));
    }
    if !is_reply(v) {
        return Err(DecodeError::Unsupported(format!("bybit {op} request")));
    }
    match op {
        // Public spot/linear streams answer a ping with op=ping, ret_msg=pong.
        "ping" => Ok(control(Control::Pong)),
        "auth" => {
            let code = v.get("retCode").and_then(code_of);
            let ok = v
                .get("success")
                .and_then(Value::as_bool)
                .unwrap_or(code == Some(0));
            if ok {
                Ok(control(Control::AuthOk))
            } else {
                let reason = match code {
                    Some(c) => format!("{c}: {}", msg_of(v)),
                    None => msg_of(v).to_string(),
                };
                Ok(control(Control::AuthFailed { reason }))
            }
        }
        // The reply does not name the topics; it echoes `req_id`, so that is the `topic` keel
        // reports (the client sends one subscribe per req_id and knows what it asked for).
        "subscribe" => {
            let topic = req_id_of(v).to_string();
            if v.get("success").and_then(Value::as_bool) == Some(true) {
                Ok(control(Control::Subscribed { topic }))
            } else {
                Ok(control(Control::SubscribeFailed {
                    topic,
                    reason: msg_of(v).to_string(),
                }))
            }
        }
        op if op.starts_with("order.") => order_entry(op, v),
        other => Err(DecodeError::Unsupported(format!("bybit {other} reply"))),
    }
}

/// Option/spread subscription reply: it lists the topics, one event per topic.
fn command_resp(v: &Value) -> Result<Vec<VenueEvent>, DecodeError> {
    let data = v.get("data");
    let topics = |key: &str| -> Vec<String> {
        data.and_then(|d| d.get(key))
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut out: Vec<VenueEvent> = topics("successTopics")
        .into_iter()
        .map(|topic| VenueEvent::Control(Control::Subscribed { topic }))
        .collect();
    out.extend(topics("failTopics").into_iter().map(|topic| {
        VenueEvent::Control(Control::SubscribeFailed {
            topic,
            reason: "subscription failed".into(),
        })
    }));
    if out.is_empty() {
        return Err(DecodeError::Unsupported(
            "bybit COMMAND_RESP without topics".into(),
        ));
    }
    Ok(out)
}

/// One acknowledgement per order of a batch: the item's `orderLinkId` is the id, its
/// `retExtInfo.list[i]` code says whether that order was accepted.
pub(crate) fn batch_acks(items: &[Value], ext: Option<&Value>) -> Vec<VenueEvent> {
    let ext = ext
        .and_then(|e| e.get("list"))
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let code = ext
                .get(i)
                .and_then(|e| e.get("code"))
                .and_then(code_of)
                .unwrap_or(0);
            let detail = if code == 0 {
                str_of(item, "orderId").unwrap_or("").to_string()
            } else {
                let msg = ext.get(i).and_then(|e| str_of(e, "msg")).unwrap_or("");
                format!("{code}: {msg}")
            };
            VenueEvent::Control(Control::Response {
                id: str_of(item, "orderLinkId").unwrap_or("").to_string(),
                ok: code == 0,
                detail,
            })
        })
        .collect()
}

/// Order-entry stream replies (`order.create`, `order.amend`, `order.cancel` and the batch
/// forms). An accepted request is not yet a live order (Bybit: confirm on the `order` topic),
/// so this is a `Control::Response` keyed by `reqId`, with the venue order id as `detail` when
/// accepted and `"{retCode}: {retMsg}"` when refused (see `bybit::parse_error` for a typed
/// error from the same body).
fn order_entry(op: &str, v: &Value) -> Result<Vec<VenueEvent>, DecodeError> {
    let code = v
        .get("retCode")
        .and_then(code_of)
        .ok_or_else(|| DecodeError::malformed(format!("bybit {op} retCode"), "missing"))?;
    let data = v.get("data");
    if op.ends_with("-batch")
        && code == 0
        && let Some(items) = data.and_then(|d| d.get("list")).and_then(Value::as_array)
        && !items.is_empty()
    {
        return Ok(batch_acks(items, v.get("retExtInfo")));
    }
    let detail = if code == 0 {
        data.and_then(|d| str_of(d, "orderId"))
            .filter(|s| !s.is_empty())
            .unwrap_or(msg_of(v))
            .to_string()
    } else {
        format!("{code}: {}", msg_of(v))
    };
    Ok(control(Control::Response {
        id: req_id_of(v).to_string(),
        ok: code == 0,
        detail,
    }))
}
