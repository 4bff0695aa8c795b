def quote(cubic_yards: float) -> float:
    return 95 + 38 * cubic_yards
