//! Reading `GET /metrics`: a scrape, and the value of one series in it.

use super::TestApp;
use reqwest::StatusCode;

/// One scrape of the text format.
pub struct Scrape(pub String);

impl TestApp {
    /// `GET /metrics` (the test client is loopback: admitted when no `ADMIN_TOKEN` is set).
    pub async fn scrape(&self) -> Scrape {
        let response = self.get("/metrics").await;
        assert_eq!(response.status(), StatusCode::OK);
        Scrape(response.text().await.expect("metrics text"))
    }
}

impl Scrape {
    /// The value of the series `name` with exactly `labels` (in any order); `None` when it is
    /// not in the scrape.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let mut wanted: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
        wanted.sort();
        self.0
            .lines()
            .filter(|line| !line.starts_with('#'))
            .find_map(|line| {
                let (series, value) = line.rsplit_once(' ')?;
                let (series_name, series_labels) = match series.split_once('{') {
                    Some((name, rest)) => (name, rest.strip_suffix('}')?),
                    None => (series, ""),
                };
                let mut found: Vec<String> = match series_labels {
                    "" => Vec::new(),
                    labels => labels.split(',').map(str::to_owned).collect(),
                };
                found.sort();
                (series_name == name && found == wanted).then(|| value.parse().expect("a number"))
            })
    }

    /// [`Scrape::value`], 0 when the series is absent (a labelled counter not yet used).
    pub fn count(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.value(name, labels).unwrap_or(0.0)
    }
}
