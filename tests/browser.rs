//! End-to-end CORS in two real browser engines: every case runs in headless Chromium (driven over
//! the DevTools protocol) and in headless Firefox ESR (driven over WebDriver BiDi).
//!
//! One case table, two engines: each case in `browser/{driver,cases,demo}.rs` is an
//! `async fn(Engine)`, and [`in_both_engines!`] stamps out one `#[tokio::test]` per engine, named
//! `chromium::CASE` and `firefox::CASE`, so `cargo test --test browser -- --include-ignored firefox`
//! runs one engine's cases alone. Every test needs its browser and is `#[ignore]`d so that a plain
//! `cargo test` stays green on a machine without it; CI runs `cargo test -- --include-ignored`,
//! where a missing browser fails the test, never skips it.

#[path = "browser/firefox/mod.rs"]
mod bidi;
#[path = "browser/cases.rs"]
mod cases;
#[path = "browser/chromium/mod.rs"]
mod cdp;
#[path = "browser/cross_site.rs"]
mod cross_site;
#[path = "browser/demo.rs"]
mod demo;
#[path = "browser/driver.rs"]
mod driver;
#[path = "browser/engine.rs"]
mod engine;
#[path = "browser/events.rs"]
mod events;
#[path = "browser/gate.rs"]
mod gate;
#[path = "browser/rate_limit.rs"]
mod rate_limit;
#[path = "browser/servers.rs"]
mod servers;

/// One `#[tokio::test]` per engine for each `module::case`, in modules `chromium` and `firefox`.
macro_rules! in_both_engines {
    ($($module:ident :: $case:ident),* $(,)?) => {
        mod chromium {
            $(
                #[tokio::test]
                #[ignore = "needs chromium: /usr/bin/chromium (run with --include-ignored)"]
                async fn $case() {
                    crate::$module::$case(crate::engine::Engine::Chromium).await
                }
            )*
        }
        mod firefox {
            $(
                #[tokio::test]
                #[ignore = "needs firefox-esr: /usr/bin/firefox-esr (run with --include-ignored)"]
                async fn $case() {
                    crate::$module::$case(crate::engine::Engine::Firefox).await
                }
            )*
        }
    };
}

in_both_engines!(
    driver::driver_runs_fetch_in_the_page_and_reports_requests_and_preflights,
    driver::driver_reports_script_exceptions_and_failed_navigation,
    cases::simple_get_from_an_allowed_origin_is_readable,
    cases::simple_get_from_a_denied_origin_is_blocked_and_never_reaches_the_upstream,
    cases::headers_only_forwards_a_denied_request_but_the_browser_still_blocks_the_read,
    cases::put_with_a_json_body_and_a_custom_header_is_preflighted_and_allowed,
    cases::a_header_outside_allowed_headers_is_stopped_at_the_preflight,
    cases::a_credentialed_fetch_succeeds_only_under_a_credentials_policy,
    cases::a_response_header_is_readable_only_when_listed_in_expose_headers,
    cases::an_upstream_500_is_readable_by_the_page,
    cases::a_second_identical_preflighted_call_within_max_age_sends_no_options,
    cases::a_websocket_connects_from_an_allowed_origin_and_fails_from_a_denied_one,
    cross_site::a_cross_site_img_is_refused_under_enforce_and_never_reaches_the_upstream,
    cross_site::a_cross_site_script_is_refused_under_enforce_and_never_runs,
    cross_site::a_cross_site_form_post_is_refused_under_enforce_top_level_and_framed,
    cross_site::a_cors_fetch_and_a_cross_site_link_still_work_under_enforce,
    cross_site::cross_site_img_and_script_load_under_report_and_are_only_counted,
    cross_site::a_cross_site_websocket_from_an_allowed_origin_connects_under_enforce,
    demo::demo_scenarios_work_from_the_allowed_origin_and_are_blocked_from_the_denied_one,
    rate_limit::a_page_reads_the_429_of_a_rate_limited_route_past_its_burst,
);
