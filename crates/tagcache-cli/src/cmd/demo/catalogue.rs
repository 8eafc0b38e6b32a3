//! The demo's application: a shop catalogue in an in-memory "database"
//! (products and categories with versions), and the pages rendered from
//! it — a page per product and per category, in a few locales — each
//! tagged by everything it shows.
//!
//! It also keeps the bookkeeping that checks tagcache's promise: for each
//! product and category, the newest version whose invalidation has
//! returned (its *fence*). A page showing an older version than a fence
//! that was in place before the read began is a stale page served.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tagcache::SetOptions;

/// Products in the database.
pub const PRODUCTS: u32 = 500;
/// Categories; product `p` is in category `p % CATEGORIES`.
pub const CATEGORIES: u32 = 25;
/// Every page exists once per locale.
const LOCALES: [&str; 4] = ["en", "de", "fr", "es"];
/// How long a rendered page stays cached (the sweep trims its index
/// members once it expires).
pub const PAGE_TTL: Duration = Duration::from_secs(10);
/// What a database read costs the loader.
pub const DB_LATENCY: Duration = Duration::from_millis(1);

/// Something in the database with a version: a product or a category.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Thing {
    /// Product `0..PRODUCTS`.
    Product(u32),
    /// Category `0..CATEGORIES`.
    Category(u32),
}

impl Thing {
    fn index(self) -> usize {
        match self {
            Self::Product(p) => p as usize,
            Self::Category(c) => (PRODUCTS + c) as usize,
        }
    }

    /// Its number (products first, then categories), as [`Rendered`]
    /// lists it.
    pub fn id(self) -> u32 {
        self.index() as u32
    }

    /// The tag of every page showing it.
    pub fn tag(self) -> String {
        match self {
            Self::Product(p) => format!("product:{p}"),
            Self::Category(c) => format!("category:{c}"),
        }
    }

    fn from_index(i: u32) -> Self {
        if i < PRODUCTS {
            Self::Product(i)
        } else {
            Self::Category(i - PRODUCTS)
        }
    }
}

/// A rendered page as cached: what it shows, at which versions, and the
/// HTML.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Rendered {
    /// (thing index, version) of everything the render read.
    pub shows: Vec<(u32, u64)>,
    /// The page.
    pub html: String,
}

/// One cacheable page.
#[derive(Debug)]
pub struct Page {
    /// Its cache key, e.g. `/de/product/17`.
    pub key: String,
    /// What it shows, products and categories.
    pub shows: Vec<Thing>,
    /// Its tags and TTL.
    pub opts: SetOptions,
}

/// The database, the pages, and the fences.
#[derive(Debug)]
pub struct Catalogue {
    versions: Vec<AtomicU64>,
    fences: Vec<AtomicU64>,
    /// Every page, product pages first.
    pub pages: Vec<Page>,
}

impl Default for Catalogue {
    fn default() -> Self {
        Self::new()
    }
}

impl Catalogue {
    /// Version 0 of everything; every page of every locale.
    pub fn new() -> Self {
        let things = (PRODUCTS + CATEGORIES) as usize;
        let mut pages = Vec::new();
        for locale in LOCALES {
            for p in 0..PRODUCTS {
                let shows = vec![Thing::Product(p), Thing::Category(p % CATEGORIES)];
                pages.push(page(format!("/{locale}/product/{p}"), shows));
            }
            for c in 0..CATEGORIES {
                let mut shows = vec![Thing::Category(c)];
                shows.extend(
                    (c..PRODUCTS)
                        .step_by(CATEGORIES as usize)
                        .map(Thing::Product),
                );
                pages.push(page(format!("/{locale}/category/{c}"), shows));
            }
        }
        Self {
            versions: (0..things).map(|_| AtomicU64::new(0)).collect(),
            fences: (0..things).map(|_| AtomicU64::new(0)).collect(),
            pages,
        }
    }

    /// The database write: a new version of `thing`.
    pub fn update(&self, thing: Thing) -> u64 {
        self.versions[thing.index()].fetch_add(1, Ordering::SeqCst) + 1
    }

    /// Records that the invalidation of `thing`, begun after `version`
    /// was written, has returned: no page showing an older version may be
    /// served from now on.
    pub fn fence(&self, thing: Thing, version: u64) {
        self.fences[thing.index()].fetch_max(version, Ordering::SeqCst);
    }

    /// The fences of what a page shows, read before the page is.
    pub fn fences_of(&self, page: &Page) -> Vec<u64> {
        page.shows
            .iter()
            .map(|t| self.fences[t.index()].load(Ordering::SeqCst))
            .collect()
    }

    /// The loader: reads the database and renders the page.
    pub fn render(&self, page: &Page) -> Rendered {
        let shows: Vec<(u32, u64)> = page
            .shows
            .iter()
            .map(|t| {
                (
                    t.index() as u32,
                    self.versions[t.index()].load(Ordering::SeqCst),
                )
            })
            .collect();
        let mut html = format!("<html><body><h1>{}</h1><ul>", page.key);
        for (i, v) in &shows {
            let price = 100 + (u64::from(*i) * 37 + v * 13) % 9900;
            html.push_str(&format!(
                "<li>{:?} v{v}: {}.{:02} EUR</li>",
                Thing::from_index(*i),
                price / 100,
                price % 100
            ));
        }
        html.push_str("</ul></body></html>");
        Rendered { shows, html }
    }

    /// What a served page shows that is older than the fences read before
    /// it was asked for: the first such thing, its version and the fence.
    pub fn stale_in(&self, served: &Rendered, fences: &[u64]) -> Option<(Thing, u64, u64)> {
        served
            .shows
            .iter()
            .zip(fences)
            .find(|((_, shown), fence)| shown < fence)
            .map(|((i, shown), fence)| (Thing::from_index(*i), *shown, *fence))
    }
}

/// The tag of every category: each page carries exactly one, so together
/// they count and clean up every page.
pub fn category_tags() -> Vec<String> {
    (0..CATEGORIES).map(|c| Thing::Category(c).tag()).collect()
}

fn page(key: String, shows: Vec<Thing>) -> Page {
    let opts = SetOptions::new()
        .ttl(PAGE_TTL)
        .tags(shows.iter().map(|t| t.tag()));
    Page { key, shows, opts }
}

/// A small, fast, seedable generator (xorshift64*), with a skew towards
/// "popular" items like real traffic.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator; any seed works.
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..1`.
    pub fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// An index in `0..n`, small ranks far likelier (density ~ rank^-2/3),
    /// scattered over `0..n` so popular items are not neighbours.
    pub fn popular(&mut self, n: usize) -> usize {
        let u = self.unit();
        let rank = ((n as f64) * u * u * u) as usize;
        (rank.min(n - 1) * 7919) % n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_show_what_they_are_tagged_with() {
        let c = Catalogue::new();
        assert_eq!(c.pages.len(), 4 * (500 + 25));
        let cat = &c.pages[500];
        assert_eq!(cat.key, "/en/category/0");
        assert_eq!(cat.shows.len(), 1 + 20);
        assert!(cat.shows.iter().all(|t| match t {
            Thing::Product(p) => p % CATEGORIES == 0,
            Thing::Category(c) => *c == 0,
        }));
    }

    #[test]
    fn a_page_older_than_a_fence_is_stale() {
        let c = Catalogue::new();
        let page = &c.pages[17];
        let old = c.render(page);
        let v = c.update(Thing::Product(17));
        let before = c.fences_of(page);
        assert_eq!(c.stale_in(&old, &before), None, "not fenced yet");
        c.fence(Thing::Product(17), v);
        let after = c.fences_of(page);
        assert_eq!(c.stale_in(&old, &after), Some((Thing::Product(17), 0, 1)));
        assert_eq!(c.stale_in(&c.render(page), &after), None);
    }

    #[test]
    fn popular_stays_in_range_and_is_skewed() {
        let mut rng = Rng::new(7);
        let mut hits = vec![0u32; 100];
        for _ in 0..100_000 {
            hits[rng.popular(100)] += 1;
        }
        let max = *hits.iter().max().unwrap_or(&0);
        let min = *hits.iter().min().unwrap_or(&0);
        assert!(max > 10 * min.max(1), "{max} vs {min}");
    }
}
