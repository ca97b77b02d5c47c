//! Every Binance payload under `tests/data` goes through its decoder (files whose path says
//! `futures` through `decode_usdm`, the rest through `decode_spot`). Each either decodes to at
//! least one event or fails with a named `Unsupported`/`Malformed` error; the files expected to
//! decode are listed, so a file that stops decoding (or starts to) shows up here.

use std::path::{Path, PathBuf};

use keel_adapters::binance::{decode_spot, decode_usdm};
use keel_adapters::model::DecodeError;

/// Files that decode to events. Everything else must be refused with a clear error: REST
/// bodies keel has no event for (tickers, ratios, commission rates, order lists without
/// reports), bodies that need context (klines, depth snapshots, exchange info, server time,
/// which have their own functions), error bodies (`parse_error`), outgoing requests, and
/// stream events keel does not consume (24h tickers, liquidations, block trades, ...).
const DECODES: &[&str] = &[
    "binance/futures/http_json/account_info_v2.json",
    "binance/futures/http_json/balance.json",
    "binance/futures/http_json/open_algo_orders.json",
    "binance/futures/http_json/order_response.json",
    "binance/futures/http_json/position_risk.json",
    "binance/futures/market_data_json/agg_trade_stream.json",
    "binance/futures/market_data_json/book_ticker_stream.json",
    "binance/futures/market_data_json/depth_update_stream.json",
    "binance/futures/market_data_json/kline_stream_closed.json",
    "binance/futures/market_data_json/kline_stream_open.json",
    "binance/futures/market_data_json/mark_price_stream.json",
    "binance/futures/market_data_json/trade_stream.json",
    "binance/futures/user_data_json/account_update.json",
    "binance/futures/user_data_json/account_update_bnfcr.json",
    "binance/futures/user_data_json/algo_update_canceled.json",
    "binance/futures/user_data_json/algo_update_new.json",
    "binance/futures/user_data_json/order_update_adl.json",
    "binance/futures/user_data_json/order_update_calculated.json",
    "binance/futures/user_data_json/order_update_calculated_pending.json",
    "binance/futures/user_data_json/order_update_delivery.json",
    "binance/futures/user_data_json/order_update_insurance.json",
    "binance/futures/user_data_json/order_update_new.json",
    "binance/futures/user_data_json/order_update_settlement.json",
    "binance/futures/user_data_json/order_update_trade.json",
    "binance/futures/user_data_json/order_update_trade_partial.json",
    "binance/futures/user_data_json/trade_lite.json",
    "binance/spot/http_json/account_response.json",
    "binance/spot/http_json/account_trades_response.json",
    "binance/spot/http_json/all_orders_response.json",
    "binance/spot/http_json/book_ticker_response.json",
    "binance/spot/http_json/cancel_open_orders_response.json",
    "binance/spot/http_json/cancel_order_response.json",
    "binance/spot/http_json/new_order_full_response.json",
    "binance/spot/http_json/open_orders_response.json",
    "binance/spot/http_json/order_response.json",
    "binance/spot/user_data_json/account_position.json",
    "binance/spot/user_data_json/account_position_wrapped.json",
    "binance/spot/user_data_json/execution_report_canceled.json",
    "binance/spot/user_data_json/execution_report_expired.json",
    "binance/spot/user_data_json/execution_report_new.json",
    "binance/spot/user_data_json/execution_report_stop_loss.json",
    "binance/spot/user_data_json/execution_report_trade.json",
    "binance/spot/user_data_json/execution_report_wrapped.json",
    "binance_docs/spot/rest-api/024_symbol_order_book_ticker.json",
    "binance_docs/spot/rest-api/025_symbol_order_book_ticker.json",
    "binance_docs/spot/rest-api/036_new_order_trade.json",
    "binance_docs/spot/rest-api/037_new_order_trade.json",
    "binance_docs/spot/rest-api/038_new_order_trade.json",
    "binance_docs/spot/rest-api/041_cancel_order_trade.json",
    "binance_docs/spot/rest-api/044_cancel_all_open_orders_on_a_symbol_trade.json",
    "binance_docs/spot/rest-api/054_new_oco_deprecated_trade.json",
    "binance_docs/spot/rest-api/055_new_order_list_oco_trade.json",
    "binance_docs/spot/rest-api/056_new_order_list_oto_trade.json",
    "binance_docs/spot/rest-api/057_new_order_list_otoco_trade.json",
    "binance_docs/spot/rest-api/058_new_order_list_opo_trade.json",
    "binance_docs/spot/rest-api/059_new_order_list_opoco_trade.json",
    "binance_docs/spot/rest-api/060_cancel_order_list_trade.json",
    "binance_docs/spot/rest-api/061_new_order_using_sor_trade.json",
    "binance_docs/spot/rest-api/063_account_information_user_data.json",
    "binance_docs/spot/rest-api/064_query_order_user_data.json",
    "binance_docs/spot/rest-api/065_current_open_orders_user_data.json",
    "binance_docs/spot/rest-api/066_all_orders_user_data.json",
    "binance_docs/spot/rest-api/070_account_trade_list_user_data.json",
    "binance_docs/spot/user-data-stream/001_account_update.json",
    "binance_docs/spot/user-data-stream/003_order_update.json",
    "binance_docs/spot/user-data-stream/005_event_stream_terminated.json",
    "binance_docs/spot/web-socket-streams/001_server_shutdown.json",
    "binance_docs/spot/web-socket-streams/002_server_shutdown.json",
    "binance_docs/spot/web-socket-streams/004_subscribe_to_a_stream.json",
    "binance_docs/spot/web-socket-streams/006_unsubscribe_to_a_stream.json",
    "binance_docs/spot/web-socket-streams/008_listing_subscriptions.json",
    "binance_docs/spot/web-socket-streams/010_setting_properties.json",
    "binance_docs/spot/web-socket-streams/012_retrieving_properties.json",
    "binance_docs/spot/web-socket-streams/014_aggregate_trade_streams.json",
    "binance_docs/spot/web-socket-streams/015_trade_streams.json",
    "binance_docs/spot/web-socket-streams/017_kline_candlestick_streams_for_utc.json",
    "binance_docs/spot/web-socket-streams/018_kline_candlestick_streams_with_timezone_offset.json",
    "binance_docs/spot/web-socket-streams/024_individual_symbol_book_ticker_streams.json",
    "binance_docs/spot/web-socket-streams/027_diff_depth_stream.json",
    "binance_py/http_responses/http_futures_account_orders.json",
    "binance_py/http_responses/http_futures_account_positions_hedge.json",
    "binance_py/http_responses/http_futures_account_positions_one_way.json",
    "binance_py/http_responses/http_futures_account_trades.json",
    "binance_py/http_responses/http_futures_market_book_ticker.json",
    "binance_py/http_responses/http_futures_market_funding_rate.json",
    "binance_py/http_responses/http_futures_market_premium_index.json",
    "binance_py/http_responses/http_spot_market_book_ticker.json",
    "binance_py/http_responses/http_spot_wallet_account.json",
    "binance_py/ws_messages/ws_futures_algo_update_finished.json",
    "binance_py/ws_messages/ws_futures_algo_update_finished_canceled.json",
    "binance_py/ws_messages/ws_futures_algo_update_triggered.json",
    "binance_py/ws_messages/ws_futures_algo_update_triggering.json",
    "binance_py/ws_messages/ws_futures_book_ticker.json",
    "binance_py/ws_messages/ws_futures_depth_diff_update.json",
    "binance_py/ws_messages/ws_futures_depth_update.json",
    "binance_py/ws_messages/ws_futures_order_update_adl.json",
    "binance_py/ws_messages/ws_futures_order_update_adl_filled.json",
    "binance_py/ws_messages/ws_futures_order_update_liquidation.json",
    "binance_py/ws_messages/ws_futures_order_update_liquidation_zero_qty.json",
    "binance_py/ws_messages/ws_futures_order_update_new_limit_if_touched_price_match.json",
    "binance_py/ws_messages/ws_futures_order_update_new_price_match.json",
    "binance_py/ws_messages/ws_futures_order_update_new_reduce_only_qty.json",
    "binance_py/ws_messages/ws_futures_order_update_new_stop_limit_price_match.json",
    "binance_py/ws_messages/ws_futures_order_update_settlement.json",
    "binance_py/ws_messages/ws_futures_order_update_trade_reduce_only_qty.json",
    "binance_py/ws_messages/ws_futures_trade_lite.json",
    "binance_py/ws_messages/ws_spot_agg_trade.json",
    "binance_py/ws_messages/ws_spot_execution_report_binance_us.json",
    "binance_py/ws_messages/ws_spot_execution_report_calculated.json",
    "binance_py/ws_messages/ws_spot_execution_report_canceled.json",
    "binance_py/ws_messages/ws_spot_execution_report_custom_client_id.json",
    "binance_py/ws_messages/ws_spot_execution_report_empty_client_id.json",
    "binance_py/ws_messages/ws_spot_execution_report_expired.json",
    "binance_py/ws_messages/ws_spot_execution_report_new.json",
    "binance_py/ws_messages/ws_spot_execution_report_new_limit_if_touched_price_match.json",
    "binance_py/ws_messages/ws_spot_execution_report_new_price_match.json",
    "binance_py/ws_messages/ws_spot_execution_report_new_stop_limit_price_match.json",
    "binance_py/ws_messages/ws_spot_execution_report_pending_cancel.json",
    "binance_py/ws_messages/ws_spot_execution_report_rejected.json",
    "binance_py/ws_messages/ws_spot_execution_report_trade.json",
    "binance_py/ws_messages/ws_spot_execution_report_trade_l_zero.json",
    "binance_py/ws_messages/ws_spot_execution_report_trade_l_zero_canceled.json",
    "binance_py/ws_messages/ws_spot_execution_report_trade_l_zero_expired.json",
    "binance_py/ws_messages/ws_spot_execution_report_trade_l_zero_new.json",
    "binance_py/ws_messages/ws_spot_execution_report_trade_l_zero_partial.json",
    "binance_py/ws_messages/ws_spot_execution_report_trade_prevention.json",
    "binance_py/ws_messages/ws_spot_ticker_book.json",
    "binance_py/ws_messages/ws_spot_trade.json",
];

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            walk(&path, out);
        } else if path.extension().is_some_and(|x| x == "json") {
            out.push(path);
        }
    }
}

#[test]
fn every_binance_payload_decodes_or_is_refused_by_name() {
    let root = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data"));
    let mut files = Vec::new();
    for dir in ["binance", "binance_py", "binance_docs"] {
        walk(&root.join(dir), &mut files);
    }
    files.sort();
    assert_eq!(files.len(), 256, "payload set changed");
    let (mut decoded, mut refused) = (0, 0);
    for path in &files {
        let rel = path
            .strip_prefix(root)
            .unwrap()
            .to_str()
            .unwrap()
            .replace('\\', "/");
        let text = std::fs::read_to_string(path).unwrap();
        let result = if rel.contains("futures") {
            decode_usdm(&text)
        } else {
            decode_spot(&text)
        };
        let expect_events = DECODES.contains(&rel.as_str());
        match result {
            Ok(events) => {
                assert!(expect_events, "{rel} decoded but is not listed: {events:?}");
                assert!(!events.is_empty(), "{rel} decoded to no events");
                decoded += 1;
            }
            Err(e) => {
                assert!(!expect_events, "{rel} is listed but failed: {e}");
                match &e {
                    DecodeError::Unsupported(kind) => {
                        assert!(kind.contains("binance"), "{rel}: {e}")
                    }
                    DecodeError::Malformed { what, detail } => {
                        assert!(!what.is_empty() && !detail.is_empty(), "{rel}: {e}")
                    }
                }
                refused += 1;
            }
        }
    }
    assert_eq!(decoded, DECODES.len());
    assert_eq!((decoded, refused), (128, 128));
}
