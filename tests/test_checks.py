"""The streaming checks: a village's features checked together wherever they lie in the
file, in one run or in several (read again), with the same findings either way."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pyarrow as pa
import shapely
import shapely.affinity
from shapely.geometry import box

from geo.geodata.parcels.checks import REGATHER, Checker, _interiors_meeting, _same_area
from geo.geodata.parcels.prepare import Codes, prepare
from geo.geodata.parcels.shared_edges import match_edges, not_shared, outline
from geo.geodata.parcels.stage import prepared_batches

FIELDS = {"parcel_no": "no", "village": "village"}


def _batch(rows: list[tuple[str, str, object]]) -> pa.RecordBatch:
    return pa.RecordBatch.from_pydict(
        {
            "village": [r[0] for r in rows],
            "no": [r[1] for r in rows],
            "geometry": [shapely.to_wkb(r[2]) for r in rows],
        }
    )


def _codes(batch: pa.RecordBatch) -> Codes:
    return Codes.of(batch.column("village").to_pylist())


def _village(code: str, x: float, overlap: bool) -> list[tuple[str, str, object]]:
    """Four parcels of a village in a row; the fourth overlaps the first when asked."""
    out = [(code, str(i + 1), box(x + i * 1e-3, 35, x + i * 1e-3 + 9e-4, 35.001)) for i in range(3)]
    last = box(x + 5e-4, 35, x + 9e-4, 35.001) if overlap else box(x + 0.01, 35, x + 0.011, 35.001)
    return [*out, (code, "1", last)]  # parcel number 1 again: a duplicate


def _report(batches: list[pa.RecordBatch]) -> dict:
    with ThreadPoolExecutor(max_workers=2) as pool:
        checker = Checker(pool)
        for made in prepared_batches(pool, batches, 4326, FIELDS, _codes):
            checker.add(made.prepared)
        for group in checker.regather():
            again = prepared_batches(
                pool,
                batches,
                4326,
                FIELDS,
                _codes,
                keep=lambda _b, codes, group=group: codes.among(group),
            )
            checker.check_again(group, (m.prepared for m in again))
        return checker.report()


def _found(report: dict) -> set[tuple[str, int]]:
    return {(f["code"], f["feature"]) for f in report["findings"] if f["level"] == "error"}


def test_a_village_split_across_the_file_is_checked_whole() -> None:
    a, b = _village("A", 51.0, overlap=True), _village("B", 52.0, overlap=False)
    together = _report([_batch(a[:2]), _batch(a[2:] + b)])  # A's run spans two batches
    split = _report([_batch(a[:2] + b[:2]), _batch(b[2:]), _batch(a[2:])])  # A comes back
    # features numbered in file order: in ``split`` A's last parcel is the 8th feature
    assert _found(together) == {
        ("duplicate_parcel_no", 4),
        ("overlap", 4),
        ("duplicate_parcel_no", 8),
    }
    assert _found(split) == {("duplicate_parcel_no", 8), ("overlap", 8), ("duplicate_parcel_no", 6)}
    overlap = next(f for f in split["findings"] if f["code"] == "overlap")
    assert overlap["message"].startswith("overlaps feature 1 (parcel 1)")
    assert split["summary"]["features"] == 8 and not split["valid"]


def test_villages_read_again_in_groups_of_bounded_size() -> None:
    with ThreadPoolExecutor(max_workers=1) as pool:
        checker = Checker(pool)
        big = REGATHER // 2 + 1
        for code in ("A", "B", "C", "A", "B", "C"):  # each comes back: all read again
            p = prepare(
                _batch([(code, "1", box(51, 35, 51.001, 35.001))]),
                np.array([1]),
                4326,
                FIELDS,
                _codes,
            )
            checker.add(p)
            checker._counts[code] += big  # as if each village had ``big`` features
        groups = checker.regather()
    assert sorted(map(sorted, groups)) == [["A"], ["B"], ["C"]]


def test_per_feature_findings_have_postgis_wording() -> None:
    bowtie = shapely.Polygon([(51, 35), (51.001, 35.001), (51.001, 35), (51, 35.001), (51, 35)])
    line = shapely.LineString([(51, 35), (51.001, 35.001)])
    report = _report(
        [_batch([("A", "1", bowtie), ("A", None, box(52, 35, 52.001, 35.001)), ("A", "3", line)])]
    )
    by_code = {f["code"]: f for f in report["findings"]}
    assert by_code["invalid_geometry"]["message"] == "Self-intersection"
    assert by_code["invalid_geometry"]["location"].startswith("POINT(51.0005 35.0005")
    assert by_code["missing_parcel_no"]["feature"] == 2
    assert by_code["wrong_geometry_type"]["message"] == "a LINESTRING, not a polygon"


def _tiling(code: str, n: int, seed: int = 7) -> list[tuple[str, str, object]]:
    """A village as real cadastres are: Voronoi cells sharing their edges exactly."""
    rng = np.random.default_rng(seed)
    frame = box(51.4, 35.7, 51.41, 35.71)
    points = shapely.multipoints(shapely.points([51.4, 35.7] + rng.random((n, 2)) * 0.01))
    cells = shapely.get_parts(shapely.voronoi_polygons(points, extend_to=frame))
    cells = shapely.intersection(cells, frame)
    return [(code, str(i + 1), cell) for i, cell in enumerate(cells)]


def test_parcels_sharing_edges_are_no_overlap_and_a_real_overlap_is() -> None:
    rows = _tiling("T", 400)
    assert _found(_report([_batch(rows)])) == set()  # 400 cells, hundreds of shared edges
    # the tenth cell pushed 2 m into its neighbours: overlaps, each with its area
    moved = [*rows]
    code, no, cell = moved[9]
    moved[9] = (code, no, shapely.affinity.translate(cell, xoff=2e-5))
    report = _report([_batch(moved)])
    overlaps = [f for f in report["findings"] if f["code"] == "overlap"]
    assert overlaps and all(f["level"] == "error" for f in overlaps)
    assert any(f["feature"] == 10 or "feature 10 " in f["message"] for f in overlaps)
    areas = [float(f["message"].rsplit("by ", 1)[1].split(" m²")[0]) for f in overlaps]
    assert all(a > 1.0 for a in areas), areas


def _exact_tiling(n: int, seed: int) -> np.ndarray:
    """A tiling as a GIS draws one: edges noded once and densified, then polygonized, so
    neighbours hold the very same vertices (as ``bench/tiling.py`` builds its maps)."""
    rng = np.random.default_rng(seed)
    frame = box(51.4, 35.7, 51.41, 35.71)
    points = shapely.multipoints(shapely.points([51.4, 35.7] + rng.random((n, 2)) * 0.01))
    cells = shapely.intersection(
        shapely.get_parts(shapely.voronoi_polygons(points, extend_to=frame)), frame
    )
    network = shapely.segmentize(shapely.union_all(shapely.boundary(cells)), 5e-5)
    return np.asarray(shapely.get_parts(shapely.polygonize(shapely.get_parts(network))))


def test_only_parcels_on_a_tilings_edge_have_edges_not_shared() -> None:
    cells = _exact_tiling(300, 3)
    flagged = not_shared(cells)
    outer = shapely.coverage_union_all(cells).exterior
    on_edge = shapely.intersects(cells, outer) & (
        shapely.length(shapely.intersection(cells, outer)) > 0
    )
    assert (flagged == on_edge).all() and 0 < flagged.sum() < len(cells) / 3
    assert (not_shared(shapely.reverse(cells)) == flagged).all()  # rings either way round
    assert (not_shared(np.asarray([shapely.MultiPolygon([c]) for c in cells])) == flagged).all()
    twice = np.concatenate([cells, cells[[150]]])  # a parcel drawn twice
    assert not_shared(twice)[[150, len(cells)]].all()
    # a parcel in another's hole, sharing the hole's ring exactly: neither flagged for it
    outer_ring, inner = box(0, 0, 10, 10), box(4, 4, 6, 6)
    holed = shapely.Polygon(outer_ring.exterior.coords, [inner.exterior.coords])
    assert not_shared(np.asarray([holed, inner])).tolist() == [True, False]


def _all_pairs(geoms: np.ndarray) -> set[tuple[int, int]]:
    n = len(geoms)
    a, b = np.triu_indices(n, 1)
    meet = shapely.relate_pattern(geoms[a], geoms[b], "T********")
    return set(zip(a[meet].tolist(), b[meet].tolist(), strict=True))


def test_the_shortcut_finds_every_pair_a_check_of_all_pairs_finds() -> None:
    """Tilings spoiled at random — a parcel moved, drawn twice, a small one dropped inside
    another, a whole sub-tiling laid inside one parcel — against relate on every pair."""
    rng = np.random.default_rng(11)
    for trial in range(24):
        cells = _exact_tiling(120, trial)
        kind = trial % 4
        i = int(rng.integers(len(cells)))
        if kind == 0:
            cells[i] = shapely.affinity.translate(cells[i], *rng.uniform(-3e-5, 3e-5, 2))
        elif kind == 1:
            cells = np.concatenate([cells, cells[[i]]])
        elif kind == 2:
            p = shapely.point_on_surface(cells[i])
            cells = np.concatenate([cells, [p.buffer(1e-6, quad_segs=2)]])
        else:  # a tiling of its own inside an inner parcel: both share all their edges
            inside = np.flatnonzero(~not_shared(cells))
            i = int(inside[np.argmax(shapely.area(cells[inside]))])
            x0, y0, x1, y1 = cells[i].bounds
            small = [
                shapely.affinity.scale(g, 0.02, 0.02, origin=(51.4, 35.7))
                for g in _exact_tiling(30, trial + 100)
            ]
            dx, dy = x0 + (x1 - x0) / 4 - 51.4, y0 + (y1 - y0) / 4 - 35.7
            moved = np.asarray([shapely.affinity.translate(g, dx, dy) for g in small])
            cells = np.concatenate([cells, moved[shapely.within(moved, cells[i])]])
        edges = match_edges(cells)
        assert outline(edges) is None, (trial, kind)  # never a simple outline over an overlap
        a, b = _interiors_meeting(cells, edges.flagged)
        expected = _all_pairs(cells)
        assert expected, (trial, kind)  # the spoiling did make an overlap
        assert set(zip(a.tolist(), b.tolist(), strict=True)) == expected, (trial, kind)
        if kind == 3:  # among them pairs of parcels whose edges are all shared
            flagged = not_shared(cells)
            assert any(not flagged[x] and not flagged[y] for x, y in expected), trial
    clean = _exact_tiling(200, 5)
    assert _interiors_meeting(clean, not_shared(clean))[0].size == 0
    (hull,) = outline(match_edges(clean))  # the union, exactly: one ring, no overlap
    assert hull.equals(shapely.coverage_union_all(clean))


def test_a_one_centimetre_overlap_along_a_long_edge_is_found_with_its_area() -> None:
    """Two 300 m farm parcels sharing an edge, one drawn 1 cm into the other: 3 m²."""
    metre = 1e-5  # degrees, about 0.9–1.1 m here; the area is measured on the ellipsoid
    left = box(51.4, 35.7, 51.4 + 300 * metre, 35.7 + 300 * metre)
    right = box(51.4 + 300 * metre, 35.7, 51.4 + 600 * metre, 35.7 + 300 * metre)
    assert _found(_report([_batch([("F", "1", left), ("F", "2", right)])])) == set()
    pushed = box(51.4, 35.7, 51.4 + 300.01 * metre, 35.7 + 300 * metre)
    report = _report([_batch([("F", "1", right), ("F", "2", pushed)])])
    (overlap,) = [f for f in report["findings"] if f["code"] == "overlap"]
    area = float(overlap["message"].rsplit("by ", 1)[1].split(" m²")[0])
    assert overlap["feature"] == 2 and 2.0 < area < 4.0, overlap


def test_an_outline_only_when_the_loose_edges_make_disjoint_simple_rings() -> None:
    a = _exact_tiling(60, 1)
    far = np.asarray([shapely.affinity.translate(g, 0.05, 0) for g in _exact_tiling(60, 2)])
    two = outline(match_edges(np.concatenate([a, far])))  # two separate clusters
    assert two is not None and len(two) == 2
    # a cluster inside another's hole: a clockwise ring, no outline
    frame = box(51.39, 35.69, 51.42, 35.72)
    hole = shapely.coverage_union_all(a).exterior.coords  # the cluster's very vertices
    ring = shapely.Polygon(frame.exterior.coords, [hole])
    assert outline(match_edges(np.concatenate([a, [ring]]))) is not None  # fills the hole
    assert outline(match_edges(np.asarray([ring, *far]))) is None
    # two clusters meeting at one corner
    corner = [box(0, 0, 1, 1), box(1, 1, 2, 2)]
    assert outline(match_edges(np.asarray(corner))) is None


def _zone_findings(rows: list, zone: object) -> set[int]:
    with ThreadPoolExecutor(max_workers=1) as pool:
        checker = Checker(pool)
        for made in prepared_batches(pool, [_batch([("Z", "z", zone)])], 4326, FIELDS, _codes):
            checker.add_zone(made.prepared)
        for made in prepared_batches(pool, [_batch(rows)], 4326, FIELDS, _codes):
            checker.add(made.prepared)
        assert checker.regather() == []  # (closes the open village: its checks run)
        report = checker.report()
    return {f["feature"] for f in report["findings"] if f["code"] == "outside_zone"}


def test_a_zone_that_misses_part_of_a_tiling_is_found() -> None:
    cells = _exact_tiling(80, 4)
    rows = [("Z", str(i + 1), c) for i, c in enumerate(cells)]
    whole = shapely.coverage_union_all(cells)
    (hull,) = outline(match_edges(cells))
    assert _same_area(whole, [hull])  # a zone drawn as its parcels' union: no covers() asked
    assert _zone_findings(rows, whole) == set()
    zone = shapely.affinity.scale(whole, 0.8, 1.0)  # narrower than the parcels
    assert not _same_area(zone, [hull])
    outside = _zone_findings(rows, zone)
    expected = {i + 1 for i, c in enumerate(cells) if shapely.area(shapely.difference(c, zone)) > 0}
    assert outside and outside <= expected  # (those over OUTSIDE_M2 of them)
