"""``sparkdl.ml.KerasEstimator``: Spark ML fit/transform, Pipeline, save/load, CrossValidator.

Every fit writes its rows with ``prepare`` and trains on real Horovod ranks in a barrier stage;
``transform`` scores with ``predict_batch_udf``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sparkdl.errors import BadInputError

pytestmark = [pytest.mark.integration, pytest.mark.long, pytest.mark.timeout(900)]


def _frame(spark, *, rows: int = 1200, labels=None, seed: int = 3):
    """Two well separated classes in 5 numeric columns ``a0..a4`` and a label ``y``."""
    import pandas as pd
    from sklearn.datasets import make_classification

    x, y = make_classification(
        n_samples=rows,
        n_features=5,
        n_informative=4,
        n_redundant=0,
        class_sep=2.5,
        random_state=seed,
    )
    pdf = pd.DataFrame(x, columns=[f"a{i}" for i in range(5)])
    pdf["y"] = [labels[v] for v in y] if labels else y.astype(float)
    return spark.createDataFrame(pdf)


def _accuracy(df, label: str = "y") -> float:
    from pyspark.ml.evaluation import MulticlassClassificationEvaluator

    return MulticlassClassificationEvaluator(labelCol=label, metricName="accuracy").evaluate(df)


def test_a_pipeline_fits_transforms_saves_and_loads(spark, tmp_path: Path) -> None:
    from pyspark.ml import Pipeline, PipelineModel
    from pyspark.ml.feature import StandardScaler, VectorAssembler
    from pyspark.ml.linalg import VectorUDT
    from pyspark.sql.types import DoubleType

    from sparkdl.ml import KerasEstimator, KerasModel

    df = _frame(spark)
    est = KerasEstimator(
        featuresCol="scaled",
        labelCol="y",
        epochs=3,
        batchSize=64,
        numWorkers=2,
        cacheDir=str(tmp_path / "cache"),
    )
    pipe = Pipeline(
        stages=[
            VectorAssembler(inputCols=[f"a{i}" for i in range(5)], outputCol="raw"),
            StandardScaler(inputCol="raw", outputCol="scaled"),
            est,
        ]
    )
    fitted = pipe.fit(df)
    model = fitted.stages[-1]
    assert isinstance(model, KerasModel)
    assert model.label_values == ("0", "1")
    assert len(model.history) == 3 and "val_accuracy" in model.history[-1]
    out = fitted.transform(df)
    # every input row and column is kept; the prediction has the label's type
    assert out.count() == df.count()
    assert out.schema["prediction"].dataType == DoubleType()
    assert isinstance(out.schema["probability"].dataType, VectorUDT)
    assert {"a0", "y", "raw", "scaled"} <= set(out.columns)
    first = out.select("prediction", "probability").limit(50).collect()
    assert {r.prediction for r in first} <= {0.0, 1.0}
    for r in first:
        assert len(r.probability) == 2 and abs(sum(r.probability) - 1.0) < 1e-5
        assert r.prediction == float(np.argmax(r.probability))
    accuracy = _accuracy(out)
    assert accuracy >= 0.9, accuracy

    # saved and loaded as a Spark ML PipelineModel: a self-contained folder, same predictions
    path = str(tmp_path / "saved-pipeline")
    fitted.write().overwrite().save(path)
    loaded = PipelineModel.load(path)
    again = loaded.stages[-1]
    assert isinstance(again, KerasModel) and again.model_path.startswith("file:")
    assert str(tmp_path / "saved-pipeline") in again.model_path
    before = [r.probability for r in out.orderBy("a0").select("probability").collect()]
    after = [
        r.probability for r in loaded.transform(df).orderBy("a0").select("probability").collect()
    ]
    assert np.allclose(np.array(before), np.array(after), atol=1e-6)

    # the unfitted pipeline (with the estimator and its params) round-trips too
    pipe.write().overwrite().save(str(tmp_path / "pipe"))
    est2 = Pipeline.load(str(tmp_path / "pipe")).getStages()[-1]
    assert isinstance(est2, KerasEstimator) and est2.uid == est.uid
    assert (est2.getOrDefault("epochs"), est2.getOrDefault("featuresCol")) == (3, "scaled")


def _small_net(input_dim: int, num_classes: int):
    import tensorflow as tf

    inputs = tf.keras.Input(shape=(input_dim,))
    hidden = tf.keras.layers.Dense(16, activation="relu")(inputs)
    return tf.keras.Model(inputs, tf.keras.layers.Dense(num_classes)(hidden))


def test_string_labels_input_columns_a_model_function_and_a_cached_refit(
    spark, tmp_path: Path
) -> None:
    from sparkdl.ml import KerasEstimator

    df = _frame(spark, labels={0: "benign", 1: "malignant"}).cache()
    est = KerasEstimator(
        inputCols=[f"a{i}" for i in range(5)],
        labelCol="y",
        model=_small_net,
        epochs=3,
        learningRate=0.01,
        batchSize=64,
        numWorkers=2,
        cacheDir=str(tmp_path / "cache"),
    )
    model = est.fit(df)
    assert model.label_values == ("benign", "malignant")
    out = model.transform(df)
    assert dict(out.dtypes)["prediction"] == "string"
    assert {r.prediction for r in out.select("prediction").distinct().collect()} <= {
        "benign",
        "malignant",
    }
    assert _accuracy_text(out) >= 0.9
    # a second fit of the same DataFrame plan reuses the rows the first one wrote
    again = est.copy({est.epochs: 1}).fit(df)
    assert again.state.dataset_version == model.state.dataset_version
    assert len(again.history) == 1
    assert len(list((tmp_path / "cache" / "data").iterdir())) == 1

    # the estimator saves its model function with it and loads it back
    est.write().overwrite().save(str(tmp_path / "est"))
    loaded = KerasEstimator.load(str(tmp_path / "est"))
    assert (tmp_path / "est" / "model_function.pkl").exists()
    built = loaded.model_function()(input_dim=5, num_classes=2)
    assert [w.shape for w in built.get_weights()] == [(5, 16), (16,), (16, 2), (2,)]


def _accuracy_text(df) -> float:
    from pyspark.sql import functions as F

    row = df.agg(F.avg((F.col("prediction") == F.col("y")).cast("double")).alias("a")).first()
    return float(row["a"])


def test_cross_validator_picks_the_better_learning_rate(spark, tmp_path: Path) -> None:
    from pyspark.ml.evaluation import MulticlassClassificationEvaluator
    from pyspark.ml.tuning import CrossValidator, ParamGridBuilder

    from sparkdl.ml import KerasEstimator, KerasModel

    df = _frame(spark, rows=800, seed=5)
    est = KerasEstimator(
        inputCols=[f"a{i}" for i in range(5)],
        labelCol="y",
        epochs=2,
        batchSize=32,
        numWorkers=1,
        validationFraction=0.0,
        cacheDir=str(tmp_path / "cache"),
        modelOptions={"hidden": 8, "depth": 1, "dropout": 0.0},
    )
    grid = ParamGridBuilder().addGrid(est.learningRate, [1e-6, 0.02]).build()
    cv = CrossValidator(
        estimator=est,
        estimatorParamMaps=grid,
        evaluator=MulticlassClassificationEvaluator(labelCol="y", metricName="accuracy"),
        numFolds=2,
        seed=7,
        parallelism=2,  # two fits at once: two 1-rank barrier stages side by side
    )
    cv_model = cv.fit(df)
    low, high = cv_model.avgMetrics
    # 2 epochs at 1e-6 leave the initial weights; at 0.02 the classes separate
    assert high >= 0.85 and high > low + 0.1, cv_model.avgMetrics
    assert isinstance(cv_model.bestModel, KerasModel)
    assert _accuracy(cv_model.transform(df)) >= 0.85


def _not_a_model(input_dim: int, num_classes: int):
    return {"layers": [input_dim, num_classes]}


def _wrong_width(input_dim: int, num_classes: int):
    import tensorflow as tf

    inputs = tf.keras.Input(shape=(input_dim,))
    return tf.keras.Model(inputs, tf.keras.layers.Dense(num_classes + 3)(inputs))


@pytest.mark.parametrize(
    ("make", "params", "match"),
    [
        ("plain", {"inputCols": ["a0", "nope"]}, r"inputCols='nope'.*no such column"),
        ("plain", {"inputCols": ["a0"], "labelCol": "missing"}, r"labelCol='missing'"),
        ("null_label", {"inputCols": ["a0"]}, r"labelCol='y' is null in 2 of"),
        ("ragged", {"featuresCol": "arr"}, r"featuresCol='arr' holds vectors of length 2 to 3"),
        ("plain", {"inputCols": ["a0"], "maxClasses": 1}, r"more than maxClasses=1"),
        ("plain", {"inputCols": ["a0"], "model": _not_a_model}, r"_not_a_model.*not a Keras"),
        ("plain", {"inputCols": ["a0"], "model": _wrong_width}, r"_wrong_width.*num_classes=2"),
        ("plain", {"inputCols": ["a0"], "epochs": 0}, r"epochs"),
        ("plain", {"inputCols": ["a0"], "trainOptions": {"batch_size": 3}}, r"batchSize"),
    ],
)
def test_bad_input_is_refused_before_any_rank_starts(spark, tmp_path, make, params, match) -> None:
    from pyspark.sql import functions as F

    from sparkdl.ml import KerasEstimator

    df = _frame(spark, rows=60)
    if make == "null_label":
        second = sorted_a1(df)[1]
        df = df.withColumn("y", F.when(F.col("a1") < F.lit(second), F.col("y")))
    elif make == "ragged":
        df = df.withColumn(
            "arr", F.when(F.col("y") > 0, F.array("a0", "a1")).otherwise(F.array("a0", "a1", "a2"))
        )
    cache = tmp_path / "cache"
    with pytest.raises(BadInputError, match=match):
        KerasEstimator(**{"labelCol": "y", "numWorkers": 1, "cacheDir": str(cache), **params}).fit(
            df
        )
    # nothing was written for the ranks, and no training output exists
    assert not (cache / "data").exists() and not (cache / "fits").exists()


def sorted_a1(df) -> list[float]:
    """The two largest ``a1`` values, descending."""
    return [r.a1 for r in df.orderBy(df.a1.desc()).select("a1").limit(2).collect()]
