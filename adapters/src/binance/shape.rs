//! A cheap first pass over a message: which envelope it uses, its event type (`e`) and which
//! of a few telling keys it has. Market data then goes straight into a typed struct; only
//! REST bodies and protocol replies are parsed into a `serde_json::Value`.

use core::fmt;

use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

pub(super) const K_UPDATE_ID: u32 = 1;
pub(super) const K_SYMBOL: u32 = 1 << 1;
pub(super) const K_BID: u32 = 1 << 2;
pub(super) const K_BID_QTY: u32 = 1 << 3;
pub(super) const K_ASK: u32 = 1 << 4;
pub(super) const K_ASK_QTY: u32 = 1 << 5;
pub(super) const K_LAST_UPDATE_ID: u32 = 1 << 6;
pub(super) const K_BIDS: u32 = 1 << 7;
pub(super) const K_ASKS: u32 = 1 << 8;
pub(super) const K_SUBSCRIPTION_ID: u32 = 1 << 9;

/// What the first pass learned about one JSON value.
#[derive(Debug, Default)]
pub(super) struct Shape<'a> {
    pub array: bool,
    /// The event type, when `e` is a plain (unescaped) string.
    pub e: Option<&'a str>,
    /// Combined-stream name (`{"stream":..,"data":..}`).
    pub stream: Option<&'a str>,
    pub data: Option<Box<Shape<'a>>>,
    /// WebSocket API user-data envelope (`{"subscriptionId":..,"event":..}`).
    pub event: Option<Box<Shape<'a>>>,
    /// The first element of an array.
    pub first: Option<Box<Shape<'a>>>,
    pub keys: u32,
}

impl Shape<'_> {
    pub(super) fn has(&self, keys: u32) -> bool {
        self.keys & keys == keys
    }

    /// Spot `bookTicker` has no `e`: it is recognized by its keys.
    pub(super) fn is_book_ticker(&self) -> bool {
        self.has(K_SYMBOL | K_BID | K_BID_QTY | K_ASK | K_ASK_QTY)
    }

    pub(super) fn is_depth_snapshot(&self) -> bool {
        self.has(K_LAST_UPDATE_ID | K_BIDS | K_ASKS)
    }
}

enum Key {
    Event,
    Stream,
    Data,
    Envelope,
    Flag(u32),
    Other,
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Key, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = Key;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object key")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key, E> {
                Ok(match v {
                    "e" => Key::Event,
                    "stream" => Key::Stream,
                    "data" => Key::Data,
                    "event" => Key::Envelope,
                    "u" => Key::Flag(K_UPDATE_ID),
                    "s" => Key::Flag(K_SYMBOL),
                    "b" => Key::Flag(K_BID),
                    "B" => Key::Flag(K_BID_QTY),
                    "a" => Key::Flag(K_ASK),
                    "A" => Key::Flag(K_ASK_QTY),
                    "lastUpdateId" => Key::Flag(K_LAST_UPDATE_ID),
                    "bids" => Key::Flag(K_BIDS),
                    "asks" => Key::Flag(K_ASKS),
                    "subscriptionId" => Key::Flag(K_SUBSCRIPTION_ID),
                    _ => Key::Other,
                })
            }
        }
        d.deserialize_identifier(KeyVisitor)
    }
}

/// A borrowed string if the value is one, `None` for anything else (the value is consumed).
struct MaybeStr<'a>(Option<&'a str>);

impl<'de> Deserialize<'de> for MaybeStr<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<MaybeStr<'de>, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = MaybeStr<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(MaybeStr(Some(v)))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
                Ok(MaybeStr(None))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Ok(MaybeStr(None))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
                Ok(MaybeStr(None))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
                Ok(MaybeStr(None))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
                Ok(MaybeStr(None))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(MaybeStr(None))
            }
            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(MaybeStr(None))
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
                MaybeStr::deserialize(d)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(MaybeStr(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(MaybeStr(None))
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for Shape<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Shape<'de>, D::Error> {
        d.deserialize_any(ShapeVisitor)
    }
}

struct ShapeVisitor;

impl ShapeVisitor {
    fn scalar<'a>() -> Shape<'a> {
        Shape::default()
    }
}

impl<'de> Visitor<'de> for ShapeVisitor {
    type Value = Shape<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Self::scalar())
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Self::scalar())
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Self::scalar())
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Self::scalar())
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(Self::scalar())
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Self::scalar())
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Self::scalar())
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        Shape::deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let first = seq.next_element::<Shape<'de>>()?.map(Box::new);
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Shape {
            array: true,
            first,
            ..Shape::default()
        })
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut shape = Shape::default();
        while let Some(key) = map.next_key::<Key>()? {
            match key {
                Key::Event => shape.e = map.next_value::<MaybeStr<'de>>()?.0,
                Key::Stream => shape.stream = map.next_value::<MaybeStr<'de>>()?.0,
                Key::Data => shape.data = Some(Box::new(map.next_value::<Shape<'de>>()?)),
                Key::Envelope => shape.event = Some(Box::new(map.next_value::<Shape<'de>>()?)),
                Key::Flag(bit) => {
                    shape.keys |= bit;
                    map.next_value::<IgnoredAny>()?;
                }
                Key::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(shape)
    }
}
