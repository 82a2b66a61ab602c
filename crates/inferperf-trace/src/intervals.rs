//! Interval-union arithmetic for GPU timelines: busy time, overlap and exposed time are all
//! defined on unions of `[start, end)` intervals (as HTA and TraceLens define them).

/// A sorted list of disjoint, non-touching `[start, end)` intervals (ns).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Union(pub Vec<(i64, i64)>);

impl Union {
    /// Builds the union of arbitrary intervals; touching or overlapping ones merge.
    pub fn from_intervals(mut v: Vec<(i64, i64)>) -> Self {
        v.retain(|(s, e)| e >= s);
        v.sort_unstable();
        let mut out: Vec<(i64, i64)> = Vec::with_capacity(v.len());
        for (s, e) in v {
            match out.last_mut() {
                Some(last) if s <= last.1 => last.1 = last.1.max(e),
                _ => out.push((s, e)),
            }
        }
        Union(out)
    }

    /// Total covered length.
    pub fn len(&self) -> i64 {
        self.0.iter().map(|(s, e)| e - s).sum()
    }

    /// True when nothing is covered.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Length of the intersection with `other`.
    pub fn overlap(&self, other: &Union) -> i64 {
        let (a, b) = (&self.0, &other.0);
        let (mut i, mut j, mut total) = (0, 0, 0);
        while i < a.len() && j < b.len() {
            let s = a[i].0.max(b[j].0);
            let e = a[i].1.min(b[j].1);
            if e > s {
                total += e - s;
            }
            if a[i].1 < b[j].1 {
                i += 1;
            } else {
                j += 1;
            }
        }
        total
    }

    /// The union of two unions.
    pub fn merge(&self, other: &Union) -> Union {
        let mut v = self.0.clone();
        v.extend_from_slice(&other.0);
        Union::from_intervals(v)
    }
}
