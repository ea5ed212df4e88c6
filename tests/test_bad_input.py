"""Bad input, as a user types it: one line on stderr naming the key, exit status 2, nothing written.

Most cases run the real command in-process (Hydra, our checks, the real store check) in a fresh
directory; a handful go through the installed console script against a store that already holds
an experiment, and read the store back.
"""

import contextlib
import io
import sys

import pytest
from mlflow.tracking import MlflowClient

import runner.cli

from conftest import run_cli, store_uri

# (overrides, text the one line must contain: at least the key)
CASES = [
    # keys no option takes, added with + or not (issue 8's list first)
    (["+architecture.hidden_sizes=[64,64]"], "architecture.hidden_sizes=[64,64]: not a parameter of architecture=deep"),
    (["+activaton=relu"], "activaton=relu: no config group or key 'activaton'; did you mean 'activation'?"),
    (["+architecture.widht=64"], "architecture.widht=64: not a parameter of architecture=deep"),
    (["+foo=1"], "foo=1: no config group or key 'foo'"),
    (["+tracking.foo=1"], "tracking.foo=1: not a parameter of tracking=mlflow"),
    (["+trainer.foo=1"], "trainer.foo=1: not a parameter of trainer=default"),
    (["+activation.alpha=0.1"], "activation.alpha=0.1: not a parameter of activation=sigmoid"),
    (["+loss.foo=1"], "loss.foo=1: not a parameter of loss=bce"),
    (["+init.std=0.1"], "init.std=0.1: not a parameter of init=glorot_uniform"),
    (["+optimizer.beta1=0.9"], "optimizer.beta1=0.9: not a parameter of optimizer=momentum"),
    (["+dataset.factor=0.5"], "dataset.factor=0.5: not a parameter of dataset=moons"),
    (["tracking=none", "tracking.uri=x"], "tracking.uri=x: not used by tracking=none"),
    (["tracking=none", "resume=true"], "resume=true: needs tracking=mlflow"),
    (["activaton=relu"], "activaton=relu: no config group or key 'activaton'; did you mean 'activation'?"),
    (["architecture.widht=64"], "architecture.widht=64: not a parameter of architecture=deep"),
    (["optimizer.learning_rate=0.1"], "optimizer.learning_rate=0.1: not a parameter of optimizer=momentum"),
    (["optimizer.lrr=1"], "optimizer.lrr=1: not a parameter of optimizer=momentum"),
    (["init=he_normal", "init.std=0.5"], "init.std=0.5: not a parameter of init=he_normal"),
    (["optimizer=sgd", "optimizer.momentum=0.9"], "optimizer.momentum=0.9: not a parameter of optimizer=sgd"),
    (["architecture=mlp", "architecture.depth=3"], "architecture.depth=3: not a parameter of architecture=mlp"),
    (["init.name=he_normal"], "init.name=he_normal: choose an option with init=he_normal"),
    (["init.bias_init=zeros", "init.bias_std=0.5"], "init.bias_std=0.5: not used by init.bias_init=zeros"),
    (["init.bias_init=normal", "init.bias_value=3"], "init.bias_value=3.0: not used by init.bias_init=normal"),
    (["init.bias_init=uniformly"], "init.bias_init=uniformly: unknown"),
    # unknown options, wrong types, syntax
    (["activation=rleu"], "activation=rleu: unknown option; activation options: "),
    (["activation=nope"], "activation=nope: unknown option"),
    (["init=xavier"], "init=xavier: unknown option"),
    (["experiment=nope"], "experiment=nope: unknown option"),
    (["optimizer.lr=abc"], "optimizer.lr=abc: must be a number"),
    (["architecture.depth=abc"], "architecture.depth=abc: must be a whole number"),
    (["architecture.depth=2.5"], "architecture.depth=2.5: must be a whole number"),
    (["trainer.shuffle=maybe"], "trainer.shuffle=maybe: must be a boolean"),
    (["a=b=c"], "a=b=c: not valid override syntax"),
    (["init=explicit"], "init.weights=???: init=explicit needs a value for init.weights"),
    (["dataset=inline"], "dataset.X=???: dataset=inline needs a value"),
    # blocks and normalization
    (["architecture.norm=btach"], "architecture.norm=btach: must be one of none | batch | layer; did you mean 'batch'?"),
    (["architecture=residual", "architecture.alpha=rezeroo"], "architecture.alpha=rezeroo: must be one of one | inv_sqrt | rezero; did you mean 'rezero'?"),
    (["architecture=residual", "architecture.order=middle"], "architecture.order=middle: must be one of pre | post"),
    (["architecture=residual", "architecture.nrom=batch"], "architecture.nrom=batch: not a parameter of architecture=residual"),
    (["architecture=residual", "architecture.blocks=8"], "architecture.blocks=8: not a parameter of architecture=residual"),
    (["architecture=residual", "architecture.depth=1"], "architecture.depth=1: a residual net's hidden layers are a stem and whole blocks"),
    (["architecture=residual", "architecture.layers_per_block=2", "architecture.depth=8"], "architecture.depth=8: a residual net's hidden layers are a stem and whole blocks of architecture.layers_per_block=2: 1 + a multiple of it, at least 3"),
    (["architecture=residual", "architecture.layers_per_block=3"], "architecture.layers_per_block=3: must be 1 or 2"),
    (["architecture.norm=batch", "trainer.batch_size=1"], "trainer.batch_size=1: architecture.norm=batch needs every batch of at least 2 samples"),
    (["architecture.norm=batch", "trainer.batch_size=299"], "trainer.batch_size=299: architecture.norm=batch needs every batch of at least 2 samples; 300 training samples in batches of 299 leave a last batch of 1"),
    (["architecture.norm=layer", "architecture.train_bias=false"], "architecture.train_bias=false: frozen biases are for plain nets"),
    (["architecture.norm=layer", "architecture.hidden_derivative=one"], "architecture.hidden_derivative=one: for plain nets"),
    (["architecture.norm=batch", "architecture.norm_momentum=2"], "architecture.norm_momentum=2.0: must be in [0, 1]"),
    (["architecture.norm=batch", "architecture.norm_eps=0"], "architecture.norm_eps=0.0: must be > 0"),
    (["architecture=residual", "trainer.jacobian_samples=4"], "trainer.jacobian_samples=4: the input-output Jacobian is computed for plain nets"),
    # values out of range
    (["seed=-1"], "seed=-1: must be an integer >= 0"),
    (["optimizer.lr=0"], "optimizer.lr=0.0: must be > 0"),
    (["optimizer.lr=-1"], "optimizer.lr=-1.0: must be > 0"),
    (["architecture.width=0"], "architecture.width=0: must be >= 1"),
    (["architecture.depth=0"], "architecture.depth=0: must be >= 1"),
    (["architecture=mlp", "architecture.hidden_sizes=[4,0]"], "architecture.hidden_sizes[1]=0: must be >= 1"),
    (["architecture.norm=layer", "architecture.width=1"],
     "architecture.norm=layer: normalizes each hidden layer over its units, and the net [2, 1, 1, 1, 1, 1, 1] has a "
     "layer of 1 unit"),
    (["architecture=mlp", "architecture.hidden_sizes=[]", "architecture.norm=layer"],
     "architecture.norm=layer: normalizes the hidden layers, and the net [2, 1] has none"),
    (["architecture.output_size=0"], "architecture.output_size=0: must be >= 1"),
    (["architecture.input_size=3"], "architecture.input_size=3: does not match dataset 'moons'"),
    (["architecture.bias=some"], "architecture.bias=some: must be one of per_unit | shared | none"),
    (["trainer.batch_size=0"], "trainer.batch_size=0: must be an integer >= 1"),
    (["trainer.epochs=0"], "trainer.epochs=0: must be an integer >= 1"),
    (["trainer.log_every=0"], "trainer.log_every=0: must be an integer >= 1"),
    (["trainer.max_steps=-1"], "trainer.max_steps=-1: must be an integer >= 1"),
    (["trainer.clip_grad_norm=-1"], "trainer.clip_grad_norm=-1.0: must be > 0"),
    (["trainer.dtype=float16"], "trainer.dtype=float16: must be one of float64 | float32"),
    (["trainer.threads=0"], "trainer.threads=0: must be >= 1"),
    (["trainer.max_memory_fraction=2"], "trainer.max_memory_fraction=2.0: must be in (0, 1]"),
    (["tracking.detail=most"], "tracking.detail=most: must be one of standard | full"),
    (["tracking.detail=ful"], "tracking.detail=ful: must be one of standard | full; did you mean 'full'?"),
    (["tracking.report=always"], "tracking.report=always: must be one of auto | never"),
    (["architecture.hidden_derivative=zero"], "architecture.hidden_derivative=zero: must be one of exact | one"),
    (["loss=cross_entropy", "architecture.output_size=1"], "'softmax' needs at least 2 output units"),
    (["loss.output_activation=tanh"], "loss 'bce' needs outputs in (0, 1)"),
    (["loss=mse", "loss.convention=half"], "loss.convention='half': unknown"),
    # data
    (["dataset.noise=nan"], "dataset.noise=nan: must be a finite number"),
    (["dataset.noise=inf"], "dataset.noise=inf: must be a finite number"),
    (["dataset.noise=-1"], "dataset.noise=-1.0: must be a finite number >= 0"),
    (["dataset=blobs", "dataset.std=nan"], "dataset.std=nan: must be a finite number"),
    (["dataset=blobs", "dataset.center_box=1e308"], "dataset.center_box=1e+308: the box's width"),
    (["dataset.val_fraction=0.999"], "dataset.val_fraction=0.999: leaves no training sample"),
    (["dataset.val_fraction=0"], "dataset.val_fraction=0.0: must be in (0, 1)"),
    (["dataset.n_samples=2"], "dataset.n_samples=2: must be an integer >= 4"),
    (["dataset=circles", "dataset.factor=2"], "dataset.factor=2.0: must be in (0, 1)"),
    (["dataset=spirals", "loss=cross_entropy", "architecture.output_size=2"], "architecture.output_size=2: dataset 'spirals' has 3 classes: 3 output unit(s)"),
    (["dataset=teacher", "dataset.output_activation=identity"], "loss=bce needs targets in [0, 1]"),
    (["dataset=inline", "dataset.X=[[1.0,nan]]", "dataset.y=[[1.0]]"], "dataset.X: contains NaN or inf"),
    (["dataset=inline", "dataset.X=[[],[]]", "dataset.y=[[1.0],[0.0]]"], "dataset.X: has empty rows"),
    (["dataset=inline", "dataset.X=[[1.0,2.0],[3.0]]", "dataset.y=[[1.0],[0.0]]"], "dataset.X: has rows of lengths"),
    (["dataset=inline", "dataset.X=[[1.0,2.0]]", "dataset.y=[[1.0]]", "dataset.X_val=[[1.0,2.0,3.0]]",
      "dataset.y_val=[[1.0]]"], "dataset.X_val: has rows of length 3, X of 2"),
    (["init=explicit", "init.weights=[[[1.0]]]"], "init.weights: gives 1 layers, the architecture has 6"),
    # memory and the tracking store
    (["architecture.width=10000000"], "architecture.width=10000000: the net"),
    (["architecture.width=20000"], "architecture.width=20000: the net"),
    (["dataset.n_samples=100000000000"], "dataset.n_samples=100000000000: the generated data would need"),
    (["tracking.uri=bogus://x"], "tracking.uri=bogus://x: unknown tracking URI scheme 'bogus'"),
    (["tracking.uri=http://127.0.0.1:9"], "tracking.uri=http://127.0.0.1:9: no tracking server answers"),
    (["tracking.uri=sqlite:////proc/x.db"], "tracking.uri=sqlite:////proc/x.db: cannot write the sqlite store"),
    (["tracking.uri=postgresql://u@127.0.0.1:9/db"], "no database answers at 127.0.0.1:9"),
    (["hydra.run.dir=/proc/x"], "hydra.run.dir=/proc/x: cannot be created (No such file or directory in /proc)"),
    # the mean-field initializer draws its own biases; its parameters have rules
    (["init=mean_field", "+init.bias_init=normal"],
     "init.bias_init=normal: not a parameter of init=mean_field, which takes: sigma_w2, sigma_b2, weights"),
    (["init=mean_field", "+init.bias_std=0.1"], "init.bias_std=0.1: not a parameter of init=mean_field"),
    (["init=mean_field", "init.sigma_w2=0"], "init.sigma_w2=0"),
    (["init=mean_field", "init.sigma_b2=-1"], "init.sigma_b2=-1"),
    (["init=mean_field", "init.weights=uniform"], "init.weights='uniform': must be gaussian or orthogonal"),
    (["trainer.jacobian_samples=-1"], "trainer.jacobian_samples=-1: must be an integer >= 0"),
    (["tracking.detail=full", "tracking.histogram_every=0"], "tracking.histogram_every=0: must be an integer >= 1"),
    (["tracking.histogram_every=5"], "tracking.histogram_every=5: used only with tracking.detail=full"),
    (["tracking.run_figures=sometimes"], "tracking.run_figures=sometimes: must be one of auto | always | never"),
    # a sweep preset, or sweep syntax, without -m
    (["experiment=he2015"], "experiment=he2015: this preset is a sweep over init=lecun_normal,he_normal; run it with -m"),
    (["activation=relu,tanh"], "activation=relu,tanh: a sweep; run it with -m"),
    (["optimizer.lr=range(0.1,0.3,0.1)"], "optimizer.lr=range(0.1,0.3,0.1): a sweep; run it with -m"),
    # numbers that are not finite: a bad input, never a divergence
    (["optimizer.lr=inf"], "optimizer.lr=inf: must be a finite number"),
    (["optimizer.lr=1e400"], "optimizer.lr=inf: must be a finite number"),
    (["optimizer.lr=nan"], "optimizer.lr=nan: must be a finite number"),
    (["init=normal", "init.std=inf"], "init.std=inf: must be a finite number"),
    (["init=orthogonal", "init.gain=-inf"], "init.gain=-inf: must be a finite number"),
    (["trainer.clip_grad_norm=inf"], "trainer.clip_grad_norm=inf: must be a finite number"),
    (["optimizer=adam", "optimizer.eps=nan"], "optimizer.eps=nan: must be a finite number"),
    # interpolations that cannot be resolved, a required group deleted
    (["description=${oops}"], "description=${oops}: cannot be resolved: interpolation key 'oops' not found"),
    (["seed=${seed}"], "seed=${seed}: cannot be resolved: it refers to itself"),
    (["description=${oc.env:BACKPROP_LAB_UNSET}"], "the environment variable BACKPROP_LAB_UNSET is not set"),
    (["optimizer.lr=${oc.env:BACKPROP_LAB_UNSET}"], "optimizer.lr=${oc.env:BACKPROP_LAB_UNSET}: cannot be resolved"),
    (["optimizer.lr=${trainer.nope}"], "optimizer.lr=${trainer.nope}: cannot be resolved"),
    (["~optimizer"], "~optimizer: optimizer is a required group: choose one of its options (adam, momentum"),
    (["~activation"], "~activation: activation is a required group"),
    (["~seed"], "~seed: keys are not deleted: the config holds exactly the keys its chosen options take"),
    (["~architecture.depth=5"], "~architecture.depth=5: keys are not deleted"),
    (["~hydra/sweeper"], "~hydra/sweeper: Hydra needs a choice for hydra/sweeper: choose one instead of deleting it"),
    (["~hydra/job_logging"], "~hydra/job_logging: Hydra needs a choice for hydra/job_logging"),
    # names and sizes MLflow would refuse after the run directory was made
    (["tracking.experiment=" + "x" * 501], "an experiment name is at most 500 characters (MLflow's limit); this one has 501"),
    (["tracking.experiment=' '"], "an experiment name must not be empty"),
    (["description=" + "d" * 8001], "at most 8000 characters (MLflow's limit for a note); this one has 8001"),
    # stores that would lose the runs, or are no store
    (["tracking.uri=sqlite:///:memory:"], "an in-memory store ends with the command and its runs with it"),
    (["tracking.uri='sqlite:///file::memory:?cache=shared'"], "an in-memory store ends with the command"),
    (["tracking.uri='http://[::1'"], "tracking.uri=http://[::1: not a valid URI (Invalid IPv6 URL)"),
    (["tracking.uri=http://localhost:99999"], "not a valid URI (Port out of range"),
    # what Hydra would fail on once the run directory exists
    (["hydra.job_logging.root.level=LOUD"], "hydra.job_logging.root.level=LOUD: must be a logging level"),
    (["hydra.hydra_logging.root.level=quiet"], "hydra.hydra_logging.root.level=quiet: must be a logging level"),
    # outputs the data cannot fill, memory blamed on the right key
    (["architecture.output_size=3"], "architecture.output_size=3: dataset 'moons' has 2 classes: 1 or 2 output unit(s)"),
    (["dataset=blobs", "loss=cross_entropy", "architecture.output_size=4"], "architecture.output_size=4: dataset 'blobs'"),
    # names: a close group name, the primary config, options that are paths, values with a newline
    (["optimiser.lr=0.1"], "optimiser.lr=0.1: no config group or key 'optimiser'; did you mean 'optimizer'?"),
    (["--config-name=confg"], "--config-name=confg: no such config; the command's config is 'config'; did you mean"),
    (["experiment=../config"], "experiment=../config: an option's name, not a path; experiment options: article_bce_231"),
    (["activation=../init/zeros"], "activation=../init/zeros: an option's name, not a path"),
    (["description=a\nb"], "description=a\\nb: not valid override syntax"),
    (["trainer.clip_grad_norm=0"], "trainer.clip_grad_norm=0.0: must be > 0 (or null to turn clipping off)"),
    # a key under a node that is null here: OmegaConf failed with an AssertionError, or an AttributeError
    (["hydra.sweeper.params.seed=0"], "hydra.sweeper.params.seed=0: hydra.sweeper.params is null here (no preset's "
                                      "sweep to change): give the sweep on the command line instead, e.g. -m seed=0,1"),
    (["hydra.sweeper.params={seed:'0,1'}"], "hydra.sweeper.params={seed:'0,1'}: hydra.sweeper.params is null here"),
    (["experiment=vanishing_depth", "hydra.sweeper.params.sed=0"],
     "hydra.sweeper.params.sed=0: the preset's sweep has no key 'sed': sweep a key on the command line instead"),
    (["hydra.launcher.n_jobs=2"], "hydra.launcher has no key 'n_jobs' (n_jobs is a parameter of hydra/launcher=joblib)"),
    (["hydra.sweeper.n_trials=2"], "hydra.sweeper has no key 'n_trials' (n_trials is a parameter of hydra/sweeper=optuna)"),
    (["hydra.sweeper.max_jobs=2"], "hydra.sweeper has no key 'max_jobs' (max_jobs is a key of the top level: max_jobs=...)"),
    (["seed.x=1"], "seed.x=1: seed is a single value, not a group of keys; set it whole (seed=...)"),
    (["+architecture.depth.a=1"], "+architecture.depth.a=1: architecture.depth is a single value, not a group of keys"),
    (["description.x=1"], "description.x=1: description is a single value, not a group of keys"),
    (["hydra.job.env_set.FOO=1"], "hydra.job.env_set has no key 'FOO' (a new key is added with +hydra.job.env_set.FOO"),
    # null for a key that needs a value: "Error merging override ... (field '...' is not Optional)"
    (["optimizer.lr=null"], "optimizer.lr=null: must be given a value, not null; give a number"),
    (["trainer.epochs=null"], "trainer.epochs=null: must be given a value, not null; give a whole number"),
    (["hydra.sweeper.longest_first=null"], "hydra.sweeper.longest_first=null: must be given a value, not null; "
                                           "give a boolean (true/false)"),
]


def run_in_process(monkeypatch, cwd, *args: str) -> tuple[int, str, str]:
    """``backprop-lab ARGS`` in this process, in ``cwd``: (exit status, stdout, stderr)."""
    monkeypatch.chdir(cwd)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    monkeypatch.setattr(sys, "argv", ["backprop-lab", *args])
    out, err = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            runner.cli.main()
        except SystemExit as exit_:
            code = exit_.code
    return code, out.getvalue(), err.getvalue()


def assert_one_clear_line(code: int, stderr: str, message: str) -> None:
    assert code == 2, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("backprop-lab: error: ") and message in lines[0], lines[0]


@pytest.mark.parametrize("overrides,message", CASES, ids=[" ".join(o)[:60] for o, _ in CASES])
def test_bad_input_is_one_line_exit_2_and_nothing_written(monkeypatch, tmp_path, overrides, message):
    code, _, stderr = run_in_process(monkeypatch, tmp_path, *overrides)
    assert_one_clear_line(code, stderr, message)
    assert list(tmp_path.iterdir()) == [], "a refused command wrote something"


@pytest.mark.parametrize("overrides,message", [
    (["optimizer.lr=0.1,0,0.2,0.3,0.4"], "optimizer.lr=0.0: must be > 0 [job #1 of 5 (optimizer.lr=0"),
    (["activation=relu,rleu"], "activation=rleu: unknown option"),
    (["architecture.depth=2,4", "+architecture.widht=3"], "architecture.widht=3: not a parameter"),
    (["init.std=0.1,0.2"], "init.std=0.1: not a parameter of init=glorot_uniform"),
    # sweeps the basic sweeper cannot expand, or that expand to nothing
    (["activation=glob(rleu*)"], "activation=glob(rleu*): matches no option of activation (elu, gelu, identity"),
    (["optimizer.lr=range(1,1)"], "optimizer.lr=range(1,1): sweeps over no value: the sweep would run nothing"),
    (["+hydra.sweeper.params.seed=0"], "+hydra.sweeper.params.seed=0: hydra.sweeper.params is null here"),
    (["trainer.batch_size.x=1,2"], "trainer.batch_size.x=1: trainer.batch_size is a single value, not a group of keys"),
    (["optimizer.lr=interval(0.1,0.2)"], "optimizer.lr=interval(0.1,0.2): interval() is drawn from by a sampling"),
    (["activation=glob(rel*),tanh"], "activation=glob(rel*),tanh: a glob() is a whole sweep"),
    # what Hydra or a plugin would fail on with a traceback once the jobs were checked
    (["hydra/launcher=joblib", "hydra.launcher.n_jobs=0", "seed=1,2"], "hydra.launcher.n_jobs=0: must be a number of"),
    (["hydra/sweeper=optuna", "hydra.sweeper.n_trials=0"], "hydra.sweeper.n_trials=0: must be an integer >= 1"),
    (["hydra.sweep.dir=/proc/y", "seed=1,2"], "hydra.sweep.dir=/proc/y: cannot be created"),
    (["optimizer.lr=range(0.1,0.3,0)"], "optimizer.lr=range(0.1,0.3,0): a range() needs a step other than 0"),
    (["hydra.sweep.subdir=same", "seed=1,2"], "hydra.sweep.subdir=same: is the same for all 2 jobs"),
    (["hydra/launcher=joblib", "hydra.launcher.backend=threading", "seed=1,2"],
     "hydra.launcher.backend=threading: Hydra's joblib launcher always runs jobs in loky worker processes"),
    (["hydra/launcher=joblib", "hydra.launcher.require=sharedmem", "seed=1,2"], "hydra.launcher.require=sharedmem"),
    (["optimizer.lr=${oc.env:BACKPROP_LAB_UNSET}", "seed=1,2"],
     "cannot be resolved: the environment variable BACKPROP_LAB_UNSET is not set (set it, or give a default: "
     "${oc.env:BACKPROP_LAB_UNSET,default}) [job #0 of 2 (optimizer.lr=${oc.env:BACKPROP_LAB_UNSET} seed=1"),
    # an Optuna search space is checked whole before its first trial
    (["hydra/sweeper=optuna", "hydra.sweeper.n_trials=2", "hydra.sweeper.direction=sideways"],
     "hydra.sweeper.direction=sideways: must be one of minimize | maximize"),
    (["hydra/sweeper=optuna", "hydra.sweeper.n_trials=2", "hydra.sweeper.pruner=medain"],
     "hydra.sweeper.pruner=medain: must be one of none | median | halving; did you mean 'median'?"),
    (["hydra/sweeper=optuna", "hydra.sweeper.n_trials=2", "hydra.sweeper.n_trails=3"],
     "hydra.sweeper.n_trails=3: hydra.sweeper has no key 'n_trails'; did you mean 'n_trials'?"),
    (["hydra/sweeper=optuna", "hydra.sweeper.n_trials=2", "hydra.sweeper.storage=sqlite:///outputs/mlflow.db"],
     "hydra.sweeper.storage=sqlite:///outputs/mlflow.db: is the MLflow store's own database; Optuna needs one"),
    (["hydra/sweeper=optuna", "hydra.sweeper.n_trials=2", "resume=true"],
     "resume=true: there is no study 'default' to continue in sqlite:///"),
    (["hydra/sweeper=optuna", "hydra.sweeper.n_trials=2", "optimizer.lr=interval(0.5,0.1)"],
     "optimizer.lr=interval(0.5,0.1): an interval needs low < high, got 0.5 and 0.1"),
    (["hydra/sweeper=optuna", "hydra.sweeper.n_trials=2", "optimizer.lr=interval(-1,0.1)"],
     "optimizer.lr=-1.0: must be > 0 [a point of optimizer.lr=interval(-1,0.1)]"),
    (["hydra/sweeper=optuna", "hydra.sweeper.n_trials=2", "optimizer.lr=tag(log,interval(0,0.1))"],
     "a log interval needs low > 0"),
    (["hydra/sweeper=optuna", "hydra.sweeper.n_trials=2", "activation=choice(relu,rleu)"],
     "activation=rleu: unknown option"),
    (["hydra/sweeper=optuna", "hydra.sweeper.n_trials=2", "architecture.depth=interval(1,4)"],
     "architecture.depth=1.0: must be a whole number [a point of architecture.depth=interval(1,4)]; interval() draws "
     "real numbers: for a whole-number key write architecture.depth=int(interval(...)) or range(...)"),
    (["hydra/sweeper=optuna", "hydra.sweeper.n_trials=2", "architecture.depth=range(4,1)"],
     "a range() needs a step that goes from its start towards its stop"),
])
def test_a_sweep_is_checked_whole_before_its_first_job(monkeypatch, tmp_path, overrides, message):
    code, stdout, stderr = run_in_process(monkeypatch, tmp_path, "-m", *overrides, "trainer.epochs=2")
    assert_one_clear_line(code, stderr, message)
    assert "Launching" not in stdout and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("overrides,message", [
    (["tracking.uri=sqlite:///notes.txt"], "/notes.txt is not a sqlite database"),
    (["hydra.run.dir=notes.txt"], "hydra.run.dir=notes.txt: cannot be created (notes.txt is a file)"),
    (["-m", "seed=1,2", "hydra.sweep.dir=notes.txt/sweep"], "hydra.sweep.dir=notes.txt/sweep: cannot be created"),
])
def test_a_file_is_neither_taken_for_a_store_nor_for_a_folder(monkeypatch, tmp_path, overrides, message):
    (tmp_path / "notes.txt").write_text("not a database\n")
    code, _, stderr = run_in_process(monkeypatch, tmp_path, *overrides)
    assert_one_clear_line(code, stderr, message)
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]
    assert (tmp_path / "notes.txt").read_text() == "not a database\n"


@pytest.mark.parametrize("group", ["architecture", "activation", "loss", "init", "optimizer", "dataset",
                                   "trainer", "tracking"])
def test_a_plus_key_typo_is_refused_in_every_group(monkeypatch, tmp_path, group):
    code, _, stderr = run_in_process(monkeypatch, tmp_path, f"+{group}.nmae=1")
    assert_one_clear_line(code, stderr, f"{group}.nmae=1: not a parameter of {group}=")


@pytest.fixture(scope="module")
def existing_store(tmp_path_factory):
    """A store that already holds an experiment: bad input must add no run to it."""
    cwd = tmp_path_factory.mktemp("store")
    (cwd / "outputs").mkdir()
    MlflowClient(store_uri(cwd)).create_experiment("default")
    return cwd


@pytest.mark.parametrize("overrides,message", [
    (["+architecture.hidden_sizes=[64,64]"], "architecture.hidden_sizes=[64,64]: not a parameter"),
    (["activation=rleu"], "did you mean 'relu'?"),
    (["-m", "optimizer.lr=0.1,0,0.2"], "optimizer.lr=0.0: must be > 0"),
    (["-m", "architecture.depth=range(1,100000000)", "activation=relu,tanh"],
     "max_jobs=10000: this sweep would be 199999998 jobs (architecture.depth=range(1,100000000) x "
     "activation=relu,tanh); raise max_jobs to run it, e.g. max_jobs=199999998"),
    (["-m", "seed=range(0,30)", "max_jobs=20"], "max_jobs=20: this sweep would be 30 jobs (seed=range(0,30))"),
    # the command line's depths replace the preset's 2,4,8,16 (as Hydra expands them): 2 x 3 x 3 = 18, not 72
    (["-m", "experiment=vanishing_depth", "architecture.depth=2,3", "max_jobs=5"],
     "max_jobs=5: this sweep would be 18 jobs (architecture.depth=2,3 x activation=sigmoid,tanh,relu x "
     "init=normal,glorot_uniform,he_normal)"),
    (["-m", "max_jobs=0"], "max_jobs=0: must be an integer >= 1"),
    (["dataset.noise=nan"], "dataset.noise=nan: must be a finite number"),
    # MLflow's own "Default" is in this store: a second "default"-but-for-case would be listed beside it
    (["tracking.experiment=DEFAULT"], "tracking.experiment=DEFAULT: the store has 'D"),
    (["-m", "tracking.experiment=DEFAULT", "seed=1,2"], "a name differing only in case (MLflow would list both)"),
    (["tracking.experiment="], "tracking.experiment=: an experiment name must not be empty"),  # was "default"
])
def test_the_installed_command_refuses_in_one_line_and_adds_no_run(existing_store, overrides, message):
    done = run_cli(existing_store, *overrides)
    assert_one_clear_line(done.returncode, done.stderr, message)
    client = MlflowClient(store_uri(existing_store))
    assert client.search_runs([e.experiment_id for e in client.search_experiments()]) == []
    assert sorted(p.name for p in (existing_store / "outputs").iterdir()) == ["mlflow.db"]


def test_a_key_given_twice_is_said_and_the_last_kept(tmp_path):
    """Hydra keeps the last and dropped the first without a word: ``-m activation=relu,sigmoid activation=tanh``
    ran one job.  A script's overrides followed by the user's is a common way to run, so it is said, not refused."""
    done = run_cli(tmp_path, "-m", "activation=relu,sigmoid", "trainer.epochs=2", "activation=tanh", "tracking=none",
                   "trainer.epochs=3")
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines()[:2] == [
        "backprop-lab: warning: activation is given twice (activation=relu,sigmoid, then activation=tanh): the last is kept",
        "backprop-lab: warning: trainer.epochs is given twice (trainer.epochs=2, then trainer.epochs=3): the last is kept"]
    assert "1 job in" in done.stdout and "(1 finished)" in done.stdout
    assert "activation=tanh" in done.stdout and "finished 3 updates" in done.stdout  # full batch: an update an epoch


def test_a_preset_sweep_narrowed_on_the_command_line_is_counted_as_hydra_runs_it(tmp_path):
    """vanishing_depth sweeps depth 2,4,8,16 x 3 activations x 3 inits; depth=2 on the command line leaves
    3 x 3 = 9 jobs, within max_jobs=9 (the preset's 36 had been counted, and the sweep refused)."""
    done = run_cli(tmp_path, "-m", "experiment=vanishing_depth", "architecture.depth=2", "max_jobs=9",
                   "tracking=none", "trainer.epochs=1")
    assert done.returncode == 0, done.stderr
    assert "9 job(s) checked" in done.stdout and "9 jobs in" in done.stdout and "(9 finished)" in done.stdout


@pytest.mark.parametrize("multirun", [False, True])
def test_tracking_none_does_not_write_over_an_earlier_commands_records(tmp_path, multirun):
    """With tracking=none the folder's files are the only records: a fixed hydra.run.dir (hydra.sweep.dir) used
    again had the second command overwrite the first's history, config and figures (a sweep: some of them)."""
    key, args = ("hydra.sweep.dir", ["-m", "seed=1,2"]) if multirun else ("hydra.run.dir", [])
    first = run_cli(tmp_path, *args, "tracking=none", "trainer.epochs=2", f"{key}=out")
    assert first.returncode == 0, first.stderr
    written = {p: p.read_bytes() for p in (tmp_path / "out").rglob("*") if p.is_file()}
    again = run_cli(tmp_path, *args, "tracking=none", "trainer.epochs=3", f"{key}=out")
    what, marker = ("sweep", "multirun.yaml") if multirun else ("run", "history.csv")
    assert_one_clear_line(again.returncode, again.stderr, f"{key}=out: holds an earlier {what}'s records ({marker})")
    assert {p: p.read_bytes() for p in (tmp_path / "out").rglob("*") if p.is_file()} == written


def test_hydra_full_error_still_shows_the_whole_trace(tmp_path):
    done = run_cli(tmp_path, "activation=rleu", env={"HYDRA_FULL_ERROR": "1"})
    assert done.returncode != 0 and "Traceback" in done.stderr


def test_a_malformed_preset_is_one_line(monkeypatch, tmp_path):
    extra = tmp_path / "extra" / "experiment"
    extra.mkdir(parents=True)
    (extra / "broken.yaml").write_text("# @package _global_\ntrainer:\n  epochs: [1, 2\n")
    work = tmp_path / "work"
    work.mkdir()
    code, _, stderr = run_in_process(monkeypatch, work, f"hydra.searchpath=[file://{tmp_path / 'extra'}]",
                                     "experiment=broken")
    assert code == 2 and len(stderr.strip().splitlines()) == 1 and "broken" in stderr, stderr
