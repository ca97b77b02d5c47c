//! Candle file import (being written).
