//! The fresh profile's `user.js`: keep Firefox on loopback and quiet. Every pref that would make it
//! phone home (updates, telemetry, Remote Settings, Safe Browsing, prefetch, DoH, captive-portal and
//! connectivity probes, studies, add-on metadata) is off or pointed at 127.0.0.1:9 (discard; nothing
//! listens), and loopback is reached directly, never through a proxy or an HTTPS upgrade.
//!
//! The remote agent also applies its own "recommended preferences" (`remote.prefs.recommended`,
//! on by default), which cover much of the same ground; these are listed anyway so the profile
//! does not depend on that list staying the same.

/// The contents of `user.js`.
pub const USER_JS: &str = r#"
// Updates.
user_pref("app.update.auto", false);
user_pref("app.update.enabled", false);
user_pref("app.update.checkInstallTime", false);
user_pref("app.update.disabledForTesting", true);
user_pref("app.update.staging.enabled", false);
user_pref("app.update.url", "http://127.0.0.1:9/update");
user_pref("extensions.update.enabled", false);
user_pref("extensions.getAddons.cache.enabled", false);
user_pref("extensions.blocklist.enabled", false);
user_pref("browser.search.update", false);
// Telemetry, health report, studies.
user_pref("toolkit.telemetry.enabled", false);
user_pref("toolkit.telemetry.unified", false);
user_pref("toolkit.telemetry.archive.enabled", false);
user_pref("toolkit.telemetry.server", "http://127.0.0.1:9/telemetry");
user_pref("toolkit.telemetry.shutdownPingSender.enabled", false);
user_pref("toolkit.telemetry.newProfilePing.enabled", false);
user_pref("toolkit.telemetry.firstShutdownPing.enabled", false);
user_pref("toolkit.telemetry.updatePing.enabled", false);
user_pref("toolkit.telemetry.bhrPing.enabled", false);
user_pref("datareporting.healthreport.uploadEnabled", false);
user_pref("datareporting.policy.dataSubmissionEnabled", false);
user_pref("datareporting.policy.dataSubmissionPolicyBypassNotification", true);
user_pref("datareporting.usage.uploadEnabled", false);
user_pref("app.normandy.enabled", false);
user_pref("app.shield.optoutstudies.enabled", false);
user_pref("browser.discovery.enabled", false);
user_pref("browser.newtabpage.activity-stream.feeds.telemetry", false);
user_pref("browser.newtabpage.activity-stream.telemetry", false);
// Remote Settings (honoured because the driver sets MOZ_REMOTE_SETTINGS_DEVTOOLS=1).
user_pref("services.settings.server", "http://127.0.0.1:9/remote-settings/v1");
// Safe Browsing.
user_pref("browser.safebrowsing.malware.enabled", false);
user_pref("browser.safebrowsing.phishing.enabled", false);
user_pref("browser.safebrowsing.blockedURIs.enabled", false);
user_pref("browser.safebrowsing.downloads.enabled", false);
user_pref("browser.safebrowsing.downloads.remote.enabled", false);
user_pref("browser.safebrowsing.provider.google4.updateURL", "http://127.0.0.1:9/safebrowsing");
user_pref("browser.safebrowsing.provider.mozilla.updateURL", "http://127.0.0.1:9/safebrowsing");
// Prefetching and speculative connections.
user_pref("network.prefetch-next", false);
user_pref("network.dns.disablePrefetch", true);
user_pref("network.predictor.enabled", false);
user_pref("network.http.speculative-parallel-limit", 0);
user_pref("browser.urlbar.speculativeConnect.enabled", false);
user_pref("browser.places.speculativeConnect.enabled", false);
// DNS-over-HTTPS off (5 = off by choice), captive portal and connectivity probes off.
user_pref("network.trr.mode", 5);
user_pref("network.captive-portal-service.enabled", false);
user_pref("network.connectivity-service.enabled", false);
// Loopback directly: no proxy, and no proxy may claim localhost.
user_pref("network.proxy.type", 0);
user_pref("network.proxy.allow_hijacking_localhost", false);
// Plain http on loopback is the point of the tests: no HTTPS-First / HTTPS-Only upgrade.
user_pref("dom.security.https_first", false);
user_pref("dom.security.https_first_pbm", false);
user_pref("dom.security.https_only_mode", false);
user_pref("network.http.http3.enable", false);
// Location, region and first-run pages.
user_pref("geo.provider.network.url", "");
user_pref("browser.region.network.url", "");
user_pref("browser.region.update.enabled", false);
user_pref("browser.shell.checkDefaultBrowser", false);
user_pref("browser.startup.homepage_override.mstone", "ignore");
user_pref("browser.startup.page", 0);
user_pref("browser.aboutwelcome.enabled", false);
user_pref("browser.newtabpage.enabled", false);
user_pref("startup.homepage_welcome_url", "about:blank");
"#;
