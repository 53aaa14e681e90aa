//! User-agent classification into browser, operating system and device type.
//!
//! Hand-written rather than a regex database (uap-core, woothee): those pull the
//! `regex` crate and a large rule set into the Worker, several hundred KB of
//! WASM against a 300 KB budget, to tell apart thousands of variants the
//! dashboards never show. Ordered token rules cover the browsers and systems
//! that make up nearly all traffic; anything else is reported as "Other".
//! Order matters: many browsers also claim to be Safari, Chrome or Mozilla, so
//! the most specific token is tested first.

/// What the dashboard shows about a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserAgent {
    /// Browser family, e.g. "Chrome", "Safari", "Firefox", "Edge".
    pub browser: &'static str,
    /// Operating system family, e.g. "Windows", "macOS", "iOS", "Android", "Linux".
    pub os: &'static str,
    /// "desktop", "mobile", "tablet" or "bot".
    pub device: &'static str,
}

/// (token, browser) in the order they must be tested.
const BROWSERS: &[(&str, &str)] = &[
    ("Edg/", "Edge"),
    ("EdgA/", "Edge"),
    ("EdgiOS/", "Edge"),
    ("Edge/", "Edge"),
    ("OPR/", "Opera"),
    ("Opera", "Opera"),
    ("SamsungBrowser/", "Samsung Internet"),
    ("YaBrowser/", "Yandex"),
    ("Vivaldi/", "Vivaldi"),
    ("UCBrowser/", "UC Browser"),
    ("DuckDuckGo/", "DuckDuckGo"),
    ("FxiOS/", "Firefox"),
    ("Firefox/", "Firefox"),
    ("CriOS/", "Chrome"),
    ("Chromium/", "Chromium"),
    ("HeadlessChrome/", "Headless Chrome"),
    ("Chrome/", "Chrome"),
    ("MSIE ", "Internet Explorer"),
    ("Trident/", "Internet Explorer"),
    ("Safari/", "Safari"),
    ("AppleWebKit/", "Safari"),
];

const BOT_TOKENS: &[&str] = &["bot", "crawler", "spider", "slurp", "curl/", "wget/", "python-requests", "headless"];

/// Classifies a `User-Agent` string. Never fails: unknown parts are "Other".
pub fn parse(ua: &str) -> UserAgent {
    let lower = ua.to_ascii_lowercase();
    let browser = BROWSERS.iter().find(|(token, _)| ua.contains(token)).map_or("Other", |(_, name)| *name);
    let os = if ua.contains("Windows Phone") {
        "Windows Phone"
    } else if ua.contains("Windows") {
        "Windows"
    } else if ua.contains("iPhone") || ua.contains("iPad") || ua.contains("iPod") {
        "iOS"
    } else if ua.contains("Android") {
        "Android"
    } else if ua.contains("CrOS") {
        "ChromeOS"
    } else if ua.contains("Mac OS X") || ua.contains("Macintosh") {
        "macOS"
    } else if ua.contains("Linux") || ua.contains("X11") {
        "Linux"
    } else {
        "Other"
    };
    let device = if BOT_TOKENS.iter().any(|t| lower.contains(t)) {
        "bot"
    } else if ua.contains("iPad") || ua.contains("Tablet") || (os == "Android" && !ua.contains("Mobile")) {
        "tablet"
    } else if ua.contains("Mobi") || ua.contains("iPhone") || ua.contains("iPod") || os == "Windows Phone" {
        "mobile"
    } else {
        "desktop"
    };
    UserAgent { browser, os, device }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(ua: &str, browser: &str, os: &str, device: &str) {
        assert_eq!(parse(ua), UserAgent { browser: leak(browser), os: leak(os), device: leak(device) }, "{ua}");
    }

    fn leak(s: &str) -> &'static str {
        Box::leak(s.to_owned().into_boxed_str())
    }

    #[test]
    fn common_clients_are_classified() {
        check(
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
            "Chrome",
            "Windows",
            "desktop",
        );
        check(
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 Edg/120.0.2210.91",
            "Edge",
            "Windows",
            "desktop",
        );
        check(
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_2) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 Safari/605.1.15",
            "Safari",
            "macOS",
            "desktop",
        );
        check(
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 Mobile/15E148 Safari/604.1",
            "Safari",
            "iOS",
            "mobile",
        );
        check(
            "Mozilla/5.0 (iPad; CPU OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/120.0.6099.119 Mobile/15E148 Safari/604.1",
            "Chrome",
            "iOS",
            "tablet",
        );
        check(
            "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.144 Mobile Safari/537.36",
            "Chrome",
            "Android",
            "mobile",
        );
        check(
            "Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/23.0 Chrome/115.0.0.0 Safari/537.36",
            "Samsung Internet",
            "Android",
            "tablet",
        );
        check(
            "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
            "Firefox",
            "Linux",
            "desktop",
        );
        check("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "Other", "Other", "bot");
        check("curl/8.5.0", "Other", "Other", "bot");
        check("", "Other", "Other", "desktop");
    }
}
