"""Small, deterministic models of the kinds users bring, fitted in the test run (each well under a second).

Each factory returns a `Fitted`: the fitted estimator and the rows it was fitted on (a DataFrame, or a
list of strings for the text model). `dump` writes one as joblib or skops into a directory.
"""

import dataclasses
import functools
import pathlib

import numpy as np
import pandas as pd

SEED = 0
CONTRACTS = ("month-to-month", "one-year", "two-year")
PAYMENTS = ("bank", "card", "cheque")


@dataclasses.dataclass(frozen=True)
class Fitted:
    estimator: object
    rows: object  # a DataFrame with the fitted columns and dtypes, or a list of texts


@functools.cache
def churn_pipeline() -> Fitted:
    """A customer-churn pipeline as a user writes it: numbers with gaps, two string columns, a boolean.

    contract's encoder raises on an unknown value (handle_unknown="error"); payment's ignores it.
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    rng = np.random.RandomState(SEED)
    n = 240
    tenure = rng.randint(0, 72, n).astype(float)
    charges = rng.uniform(18, 120, n).round(2)
    contract = rng.choice(CONTRACTS, n)
    payment = rng.choice(PAYMENTS, n)
    senior = rng.rand(n) < 0.2
    score = -0.04 * tenure + 0.02 * charges + np.where(contract == "month-to-month", 1.2, -0.8) + 0.6 * senior
    label = np.where(score + rng.normal(0, 0.6, n) > 0.3, "churn", "stay")
    tenure[rng.rand(n) < 0.1] = np.nan
    charges[rng.rand(n) < 0.1] = np.nan
    frame = pd.DataFrame({"tenure_months": tenure, "monthly_charges": charges, "contract": contract,
                          "payment": payment, "senior": senior})
    numbers = make_pipeline(SimpleImputer(strategy="median"), StandardScaler())
    columns = ColumnTransformer([
        ("numbers", numbers, ["tenure_months", "monthly_charges"]),
        ("contract", OneHotEncoder(handle_unknown="error"), ["contract"]),
        ("payment", OneHotEncoder(handle_unknown="ignore"), ["payment"]),
    ], remainder="passthrough")
    estimator = Pipeline([("columns", columns), ("classifier", LogisticRegression(max_iter=1000))])
    return Fitted(estimator.fit(frame, label), frame)


TEXTS = {
    "spam": ["win a free prize now", "cheap pills online", "claim your free money", "you won a lottery prize",
             "free entry to win cash", "urgent offer click now", "lowest price guaranteed buy now",
             "exclusive deal free gift", "cash bonus waiting claim now", "limited offer win big",
             "get rich quick free", "click here for free credit", "winner selected claim prize",
             "double your cash today", "free trial act now", "hot deal cheap watches"],
    "ham": ["are we still meeting for lunch", "see you at the station at six", "the report is attached",
            "can you call me back later", "happy birthday to your sister", "the meeting moved to monday",
            "thanks for the notes from class", "dinner at my place tonight", "did you feed the cat",
            "let us review the draft tomorrow", "the train is running late", "I left my keys at home",
            "please send the slides before noon", "how was the concert", "bring the charger please",
            "the kids loved the park"],
}


@functools.cache
def text_classifier() -> Fitted:
    """One string per row: TF-IDF and a logistic regression with string labels."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    texts = [t for label in ("spam", "ham") for t in TEXTS[label]]
    labels = [label for label in ("spam", "ham") for _ in TEXTS[label]]
    estimator = make_pipeline(TfidfVectorizer(), LogisticRegression(max_iter=1000))
    return Fitted(estimator.fit(texts, labels), texts)


@functools.cache
def nan_regressor() -> Fitted:
    """A regressor that takes missing values itself (no imputer), fitted on a DataFrame with names."""
    from sklearn.ensemble import HistGradientBoostingRegressor

    rng = np.random.RandomState(SEED)
    n = 300
    frame = pd.DataFrame({"rooms": rng.randint(1, 8, n).astype(float), "area_m2": rng.uniform(20, 200, n),
                          "age_years": rng.uniform(0, 80, n)})
    target = 30 * frame["rooms"] + 2.5 * frame["area_m2"] - 0.8 * frame["age_years"] + rng.normal(0, 10, n)
    for column in frame:
        frame.loc[rng.rand(n) < 0.15, column] = np.nan
    estimator = HistGradientBoostingRegressor(max_iter=30, random_state=SEED)
    return Fitted(estimator.fit(frame, target), frame)


def dump(fitted: Fitted, directory: pathlib.Path, fmt: str = "joblib", name: str = "model") -> pathlib.Path:
    """Writes the estimator as `name.joblib` or `name.skops` into `directory`; returns the file."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.{fmt}"
    if fmt == "joblib":
        import joblib

        joblib.dump(fitted.estimator, path)
    elif fmt == "skops":
        import skops.io

        skops.io.dump(fitted.estimator, path)
    else:
        raise ValueError(f"unknown format {fmt!r}")
    return path


def write_sample(fitted: Fitted, path: pathlib.Path, rows: int | None = None) -> pathlib.Path:
    """The fitted rows as a sample file for `python -m model package`: CSV or JSON lines by suffix."""
    frame = fitted.rows if isinstance(fitted.rows, pd.DataFrame) else pd.DataFrame({"text": fitted.rows})
    frame = frame.head(rows) if rows else frame
    if path.suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_json(path, orient="records", lines=True)
    return path
