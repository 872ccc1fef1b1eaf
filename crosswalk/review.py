"""The review queue (worst first), filtered link listings, and people's decisions."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, text

from crosswalk.errors import InvalidParameter, ValidationError
from crosswalk.release import latest_run
from crosswalk.units import CROSSWALK_AGENCIES
from geo.geodata.persian import normalize_code
from geo.models.crosswalk import DECISIONS
from geo.models.registry import LEVELS

__all__ = ["decide", "links", "review_queue"]

_NAMES = (
    "(SELECT name FROM division WHERE edition_id = r.moi_edition_id AND code = l.moi_code)"
    " AS moi_name,"
    " (SELECT name FROM division WHERE edition_id = r.sci_edition_id AND code = l.sci_code)"
    " AS sci_name,"
    " (SELECT name FROM division WHERE edition_id = r.hf_edition_id AND code = l.hf_code)"
    " AS hf_name,"
    " (SELECT string_agg(a.name, ' / ' ORDER BY array_position(d.ancestors, a.code))"
    "  FROM division d JOIN division a ON a.edition_id = d.edition_id AND a.code = ANY(d.ancestors)"
    "  WHERE d.edition_id = r.moi_edition_id AND d.code = l.moi_code) AS moi_parents,"
    " (SELECT string_agg(a.name, ' / ' ORDER BY array_position(d.ancestors, a.code))"
    "  FROM division d JOIN division a ON a.edition_id = d.edition_id AND a.code = ANY(d.ancestors)"
    "  WHERE d.edition_id = coalesce(r.sci_edition_id, 0) AND d.code = l.sci_code) AS sci_parents,"
    " (SELECT string_agg(a.name, ' / ' ORDER BY array_position(d.ancestors, a.code))"
    "  FROM division d JOIN division a ON a.edition_id = d.edition_id AND a.code = ANY(d.ancestors)"
    "  WHERE d.edition_id = coalesce(r.hf_edition_id, 0) AND d.code = l.hf_code) AS hf_parents"
)


def links(
    conn: Connection,
    *,
    run_id: int | None = None,
    level: str | None = None,
    status: str | None = None,
    agency: str | None = None,
    code: str | None = None,
    parent: str | None = None,
    limit: int = 100,
    offset: int = 0,
    worst_first: bool = False,
) -> dict[str, Any]:
    """Links of a run, filtered by level, status, one agency's code, or MOI parent code."""
    run_id = run_id or latest_run(conn)
    if level and level not in LEVELS:
        raise InvalidParameter(f"level is one of {', '.join(LEVELS)}", field="level")
    if agency and agency not in CROSSWALK_AGENCIES:
        raise InvalidParameter(
            f"agency is one of {', '.join(CROSSWALK_AGENCIES)}",
            field="agency",
        )
    where = ["l.run_id = :run"]
    params: dict[str, Any] = {"run": run_id, "limit": limit, "offset": offset}
    if level:
        where.append("l.level = :level")
        params["level"] = level
    if status:
        where.append("l.status = :status")
        params["status"] = status
    if agency and code:
        where.append(f"l.{agency}_code = :code")
        params["code"] = normalize_code(code)
    if parent:
        where.append(
            "l.moi_code IN (SELECT code FROM division WHERE edition_id = r.moi_edition_id"
            " AND parent_code = :parent)"
        )
        params["parent"] = normalize_code(parent)
    cond = " AND ".join(where)
    total = conn.execute(
        text(
            f"SELECT count(*) FROM crosswalk_link l JOIN crosswalk_run r ON r.id = l.run_id"
            f" WHERE {cond}"
        ),
        params,
    ).scalar_one()
    order = "l.confidence, l.id" if worst_first else "l.level, l.moi_code, l.id"
    rows = (
        conn.execute(
            text(
                f"SELECT l.id, l.level, l.moi_code, l.sci_code, l.hf_code, l.relation,"
                f" l.confidence, l.method, l.status, l.evidence, {_NAMES}"
                f" FROM crosswalk_link l JOIN crosswalk_run r ON r.id = l.run_id WHERE {cond}"
                f" ORDER BY {order} LIMIT :limit OFFSET :offset"
            ),
            params,
        )
        .mappings()
        .all()
    )
    return {
        "run_id": run_id,
        "total": total,
        "offset": offset,
        "limit": limit,
        "links": [dict(r) for r in rows],
    }


def review_queue(
    conn: Connection, *, level: str | None = None, limit: int = 50, offset: int = 0
) -> dict[str, Any]:
    """Links waiting for a person, worst first, with the queue's progress."""
    page = links(
        conn, level=level, status="needs_review", limit=limit, offset=offset, worst_first=True
    )
    decided = conn.execute(
        text(
            "SELECT count(*) FROM crosswalk_link WHERE run_id = :r"
            " AND status IN ('confirmed', 'rejected')"
        ),
        {"r": page["run_id"]},
    ).scalar_one()
    page["progress"] = {"waiting": page["total"], "decided": decided}
    return page


def _touched(
    conn: Connection, run_id: int, level: str, moi_code: str, other: str, other_code: str
) -> dict[str, dict[str, Any]]:
    """The links a decision can change (same MOI unit or same other unit), by feed id."""
    col = f"{other}_code"
    rows = conn.execute(
        text(
            f"SELECT level, moi_code, {col} AS other, relation, status, confidence"
            f" FROM crosswalk_link WHERE run_id = :r AND level = :l AND {col} IS NOT NULL"
            f" AND (moi_code = :m OR {col} = :o) AND status <> 'rejected'"
        ),
        {"r": run_id, "l": level, "m": moi_code, "o": other_code},
    ).mappings()
    return {
        f"{r['level']}:moi:{r['moi_code']}~{other}:{r['other']}": {
            "relation": r["relation"],
            "status": r["status"],
            "confidence": r["confidence"],
        }
        for r in rows
    }


def _announce(
    conn: Connection,
    before: dict[str, dict[str, Any]],
    after: dict[str, dict[str, Any]],
    cause: dict[str, Any],
) -> None:
    """A change event per link the decision added, removed (rejected) or changed, in the
    decision's transaction: the feed tells agencies at once, not at the next build."""
    import json

    for key in sorted(set(before) | set(after)):
        old, new = before.get(key), after.get(key)
        if old == new:
            continue
        operation = "insert" if old is None else "delete" if new is None else "update"
        conn.execute(
            text(
                "INSERT INTO change (entity_kind, entity_id, operation, cause, before, after)"
                " VALUES ('crosswalk', :k, :op, CAST(:c AS jsonb), CAST(:b AS jsonb),"
                " CAST(:a AS jsonb))"
            ),
            {
                "k": key,
                "op": operation,
                "c": json.dumps(cause),
                "b": json.dumps(old) if old else None,
                "a": json.dumps(new) if new else None,
            },
        )


def decide(
    conn: Connection,
    *,
    level: str,
    moi_code: str,
    other_agency: str,
    other_code: str,
    decision: str,
    note: str | None = None,
    by: str | None = None,
) -> dict[str, Any]:
    """Store a person's decision (it survives every rebuild) and apply it to the newest run."""
    if decision not in DECISIONS:
        raise InvalidParameter(f"decision is one of {', '.join(DECISIONS)}", field="decision")
    if level not in LEVELS:
        raise InvalidParameter(f"level is one of {', '.join(LEVELS)}", field="level")
    if other_agency not in {"sci", "hf"}:
        raise InvalidParameter("the other agency is sci or hf", field="agency")
    moi_code, other_code = normalize_code(moi_code), normalize_code(other_code)
    run_id = latest_run(conn)
    run = conn.execute(
        text(
            "SELECT moi_edition_id, sci_edition_id, hf_edition_id FROM crosswalk_run WHERE id = :r"
        ),
        {"r": run_id},
    ).one()
    other_edition = run.sci_edition_id if other_agency == "sci" else run.hf_edition_id
    for agency, edition, code in (
        ("moi", run.moi_edition_id, moi_code),
        (other_agency, other_edition, other_code),
    ):
        found = conn.execute(
            text("SELECT level FROM division WHERE edition_id = :e AND code = :c"),
            {"e": edition, "c": code},
        ).scalar()
        if found is None:
            raise ValidationError(
                f"{agency} has no code {code} in the run's edition",
                code="unknown_code",
                field=f"{agency}_code",
            )
        if found != level:
            raise ValidationError(
                f"{agency} {code} is a {found}, not a {level}", code="level_mismatch", field="level"
            )
    touched = _touched(conn, run_id, level, moi_code, other_agency, other_code)
    decision_id = conn.execute(
        text(
            f"INSERT INTO crosswalk_decision (level, moi_code, {other_agency}_code, decision,"
            f" note, decided_by) VALUES (:l, :m, :o, :d, :n, :by) RETURNING id"
        ),
        {"l": level, "m": moi_code, "o": other_code, "d": decision, "n": note, "by": by},
    ).scalar_one()
    col = f"{other_agency}_code"
    if decision == "reject":
        conn.execute(
            text(
                f"UPDATE crosswalk_link SET status = 'rejected' WHERE run_id = :r"
                f" AND level = :l AND moi_code = :m AND {col} = :o"
            ),
            {"r": run_id, "l": level, "m": moi_code, "o": other_code},
        )
    else:
        if decision == "link":
            conn.execute(
                text(
                    f"UPDATE crosswalk_link SET status = 'rejected'"
                    f" WHERE run_id = :r AND level = :l"
                    f" AND {col} IS NOT NULL AND status IN ('auto', 'needs_review')"
                    f" AND (moi_code = :m OR {col} = :o) AND NOT (moi_code = :m AND {col} = :o)"
                ),
                {"r": run_id, "l": level, "m": moi_code, "o": other_code},
            )
        updated = conn.execute(
            text(
                f"UPDATE crosswalk_link SET status = 'confirmed' WHERE run_id = :r AND level = :l"
                f" AND moi_code = :m AND {col} = :o"
            ),
            {"r": run_id, "l": level, "m": moi_code, "o": other_code},
        ).rowcount
        if not updated:
            conn.execute(
                text(
                    f"INSERT INTO crosswalk_link (run_id, level, moi_code, {col}, relation,"
                    f" confidence, method, status, evidence) VALUES (:r, :l, :m, :o, 'same', 1,"
                    f" 'manual', 'confirmed', :e)"
                ),
                {
                    "r": run_id,
                    "l": level,
                    "m": moi_code,
                    "o": other_code,
                    "e": '{"text": "decision: ' + decision + '"}',
                },
            )
    _announce(
        conn,
        touched,
        _touched(conn, run_id, level, moi_code, other_agency, other_code),
        {"crosswalk_run": run_id, "decision": decision_id},
    )
    return {
        "decision_id": decision_id,
        "run_id": run_id,
        "level": level,
        "moi_code": moi_code,
        f"{other_agency}_code": other_code,
        "decision": decision,
    }
