"""Same numbers on 1 device, 8 simulated devices and 2 processes; exact resume after SIGKILL."""
import json
import pathlib
import re
import signal
import time

import pytest

import helpers
import runs
from cnnviz_jax import xla_flags


@pytest.mark.slow  # five training runs
def test_one_device_eight_devices_and_two_processes_agree(tmp_path, data_dir):
  # SGD, not the demo's AdamW: Adam divides by sqrt(v), so a gradient entry at rounding-noise
  # level becomes a ±lr step and the last-bit differences of 8 partial sums vs 1 grow to ~1e-4
  # in 8 steps (seen on one CPU model, not on another). With SGD the first step differs at
  # rounding level only: that is the same computation on every topology, checked tightly.
  # Later steps can amplify it: a pre-activation within rounding of 0 (BatchNorm's batch
  # statistics are summed in another order) switches a ReLU or a max-pool's winner, one
  # gradient entry changes by O(1), and after 8 steps of lr 0.1 kernels differed by 2.3e-4
  # (seen with an init that differed in its last bits). A wrong topology (a gradient summed instead
  # of averaged, BatchNorm on a device's share of the batch) is off by ~1e-2 and fails both.
  epoch = ["--config.stages[0].epochs=1", "--config.stages[0].optimizer.name=sgd",
           "--config.stages[0].schedule.lr=0.1", "--config.checkpoint_every_steps=1",
           "--config.checkpoint_keep=8"]
  flags = {"XLA_FLAGS": xla_flags.CPU_FLAGS}  # the same kernels in every configuration
  single = runs.run_main(tmp_path / "one", data_dir, *epoch, env=flags)
  assert single.returncode == 0, single.stdout[-3000:] + single.stderr[-3000:]
  eight = runs.run_main(tmp_path / "eight", data_dir, *epoch, env=helpers.eight_devices())
  assert eight.returncode == 0, eight.stderr[-3000:]
  port = helpers.free_port()
  processes = [runs.run_main(tmp_path / "two", data_dir, *epoch, *_two(port, i), env=flags,
                             wait=False, report=True) for i in range(2)]
  outputs = [p.communicate(timeout=900)[0] for p in processes]
  assert [p.returncode for p in processes] == [0, 0], outputs[0][-3000:] + outputs[1][-3000:]
  assert "2 process(es)" in outputs[0] or "of 2" in outputs[0]
  for other in ("eight", "two"):
    helpers.assert_trees_close(runs.learned(runs.state_at(tmp_path / "one", 1)),
                               runs.learned(runs.state_at(tmp_path / other, 1)), atol=1e-6)
    runs.assert_same_run(tmp_path / "one", tmp_path / other, atol=1e-3)
  results = [json.loads((tmp_path / d / "results.json").read_text()) for d in ("one", "eight", "two")]
  assert results[0]["splits"]["test"]["confusion_matrix"] == \
      results[1]["splits"]["test"]["confusion_matrix"] == results[2]["splits"]["test"]["confusion_matrix"]
  # process 0 wrote the report while process 1 waited for it
  assert f"report: {tmp_path / 'two'}/report.html" in outputs[0]
  assert 'data-status="complete"' in (tmp_path / "two" / "report.html").read_text()

  # --mode=evaluate under two processes: the final evaluation again, every example once
  port = helpers.free_port()
  evaluations = [helpers.python("-m", "cnnviz_jax.main", "--mode=evaluate",
                                f"--workdir={tmp_path / 'two'}", "--eval_name=two",
                                *_two(port, i), env=flags, wait=False) for i in range(2)]
  outputs = [p.communicate(timeout=600)[0] for p in evaluations]
  assert [p.returncode for p in evaluations] == [0, 0], outputs[0][-3000:] + outputs[1][-3000:]
  evaluated = json.loads((tmp_path / "two" / "eval" / "two.json").read_text())
  assert evaluated["splits"] == results[2]["splits"]


def _two(port: int, i: int) -> list[str]:
  return [f"--coordinator_address=127.0.0.1:{port}", "--num_processes=2", f"--process_id={i}"]


def _interrupt(workdir, data_dir, after_step: int, sig, *args, wait_s: float = 0.3, **kwargs):
  """Starts the run, sends `sig` `wait_s` after checkpoint `after_step` exists; -> (exit
  code, output)."""
  process = runs.run_main(workdir, data_dir, *args, wait=False, **kwargs)
  deadline = time.time() + 300
  while not (workdir / "checkpoints" / str(after_step)).exists():
    assert process.poll() is None and time.time() < deadline, "run ended before the signal"
    time.sleep(0.05)
  time.sleep(wait_s)
  process.send_signal(sig)
  output = process.communicate(timeout=300)[0]
  return process.returncode, output


def _saved_steps(workdir) -> list[int]:
  return sorted(int(p.name) for p in (workdir / "checkpoints").iterdir() if p.name.isdigit())


@pytest.mark.slow  # five training runs
def test_sigkill_and_sigterm_in_stage_two_then_the_same_command_ends_like_an_uninterrupted_run(
    tmp_path, data_dir):
  # stage 1: 1 epoch, head only; stage 2: 4 epochs, warmup_cosine. Batch 8: 32 steps an
  # epoch (steps 33-160 in stage 2: long enough for a SIGTERM to land inside it), a
  # checkpoint also every 10 steps.
  args = ("--config.stages[0].epochs=1", "--config.stages[1].epochs=4",
          "--config.data.batch_size=8", "--config.checkpoint_every_steps=10")
  two_stages = dict(config=pathlib.Path(__file__).parent / "two_stages.py")
  complete = runs.run_main(tmp_path / "complete", data_dir, *args, **two_stages)
  assert complete.returncode == 0, complete.stderr[-3000:]

  killed = tmp_path / "killed"  # SIGKILL after the mid-epoch checkpoint at step 50
  code, _ = _interrupt(killed, data_dir, 50, signal.SIGKILL, *args, **two_stages)
  assert code == -signal.SIGKILL and not (killed / "results.json").exists()
  last = _saved_steps(killed)[-1]
  resumed = runs.run_main(killed, data_dir, *args, **two_stages)
  assert resumed.returncode == 0, resumed.stderr[-3000:]
  assert f"resumed at step {last} (stage 1" in resumed.stderr
  runs.assert_same_run(tmp_path / "complete", killed, atol=0)

  terminated = tmp_path / "terminated"  # SIGTERM (preemption) in stage 2's second epoch
  code, output = _interrupt(terminated, data_dir, 70, signal.SIGTERM, *args, **two_stages,
                            wait_s=0.0)
  assert code == 143, output[-3000:]
  step = int(re.search(r"preempted: saved a checkpoint at step (\d+)", output).group(1))
  assert 70 < step < 160 and _saved_steps(terminated)[-1] == step
  resumed = runs.run_main(terminated, data_dir, *args, **two_stages)
  assert resumed.returncode == 0, resumed.stderr[-3000:]
  epoch = (step - 32) // 32  # resumes at the SIGTERM step, not at its epoch's start
  assert f"resumed at step {step} (stage 1, epoch {epoch})" in resumed.stderr
  runs.assert_same_run(tmp_path / "complete", terminated, atol=0)
  for workdir in (killed, terminated):
    assert json.loads((tmp_path / "complete" / "results.json").read_text())["splits"] == \
        json.loads((workdir / "results.json").read_text())["splits"]


@pytest.mark.slow
def test_bad_config_fails_before_any_work_naming_the_field(tmp_path, data_dir):
  unknown = runs.run_main(tmp_path / "a", data_dir, "--config.stages[0].optimizer.nam=sgd")
  assert unknown.returncode != 0
  assert "--config.stages[0].optimizer.nam: the config has no field 'nam'" in unknown.stderr
  bad = runs.run_main(tmp_path / "b", data_dir, "--config.stages[0].optimizer.name=lamb")
  assert bad.returncode != 0
  assert "config.stages[0].optimizer.name: unknown optimizer 'lamb'; valid: sgd" in bad.stderr
  assert not (tmp_path / "b").exists()
