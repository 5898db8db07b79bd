"""Fine-tuning methods, one registered function each: how a model is made trainable, its default
learning rate, its own options and its FLOP rule.

Which method is best depends on the task and the data size (Zhang et al., "When Scaling Meets LLM
Finetuning", ICLR 2024), and no zero-shot score can rank two methods of one model, so methods are
candidates like models are. To add one: write a function that takes the loaded model and the
method's options and returns the model to train (peft-wrapped or as it is), and decorate it with
`@method(...)` here. Everything else (the CLI's `--methods`, run files' `{model, method, options}`,
training, saving, costing) reads the registry.

FLOP rule (flops.py): a trained token costs 2N forward + 2N for the activation gradients, plus 2N
for the weight gradients only where every weight is trained (full fine-tuning: 6N); adapter methods
give frozen weights no weight gradients (4N). A method may add a cost per micro-batch that does not
scale with tokens (DoRA's weight norms).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from damoc.errors import DamocError
from damoc.registry import Registry


class OptionsError(DamocError, ValueError):
    """A ValueError too, so that a config validating a method's options reports it in one line."""


class NoOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class LoraOptions(NoOptions):
    r: int | None = Field(None, ge=1, description="adapter rank (default: the run's lora_r)")
    alpha: int | None = Field(None, ge=1, description="scale numerator (default: the run's lora_alpha, or twice r "
                              "when r is given)")
    dropout: float | None = Field(None, ge=0, lt=1, description="dropout on the adapter path (default: the run's "
                                  "lora_dropout)")


class LohaOptions(NoOptions):
    r: int = Field(8, ge=1, description="rank of each of the two Hadamard factors")
    alpha: int = Field(16, ge=1, description="scale numerator")


@dataclass(frozen=True)
class Method:
    name: str
    description: str
    learning_rate: float  # the default peak rate, from the method's paper or common practice
    options: type[BaseModel]
    wrap: Callable  # (model, options, run_config) -> the model to train
    weight_gradients: bool = False  # every weight trained: 6N per token instead of 4N
    quantized: bool = False  # trains on 4-bit weights (QLoRA): only methods that leave the weights frozen
    step_flops: Callable | None = None  # (body_params, options, run_config) -> FLOPs per micro-batch, if any
    dense_delta: bool = False  # the update is rebuilt as a dense matrix and applied per token (damoc.flops)

    def parse(self, options: dict | None) -> BaseModel:
        """The options validated; unknown ones refused in one line."""
        try:
            return self.options.model_validate(options or {})
        except ValidationError as e:
            what = "; ".join(f"{'.'.join(map(str, x['loc'])) or 'options'}: {x['msg']}" for x in e.errors())
            raise OptionsError(f"method {self.name}: {what}") from None


METHODS: Registry[Method] = Registry("fine-tuning method")

# The order `--methods` defaults list them in, and the "size" free guess's order of methods of one
# model: cheapest first.
ORDER = ["lora", "dora", "ia3", "loha", "full"]
DEFAULT = ORDER[0]  # the method a candidate gets when none is named


def method(name: str, *, description: str, learning_rate: float, options: type[BaseModel] = NoOptions,
           weight_gradients: bool = False, quantized: bool = False, step_flops: Callable | None = None,
           dense_delta: bool = False):
    """Register the decorated `wrap(model, options, run_config)` as fine-tuning method `name`."""
    def register(wrap: Callable) -> Callable:
        METHODS.add(name, Method(name, description, learning_rate, options, wrap, weight_gradients, quantized,
                                 step_flops, dense_delta), description=description)
        return wrap
    return register


def get_method(name: str) -> Method:
    return METHODS.get(name)


def ordered(names: list[str]) -> list[str]:
    return sorted(names, key=lambda n: ORDER.index(n) if n in ORDER else len(ORDER))


# ---------------------------------------------------------------- where adapters go


def decoder_linears(model) -> list[str]:
    """Names of the linear layers inside the decoder blocks, read from the model itself."""
    from torch import nn

    names = {full.rsplit(".", 1)[-1] for full, module in model.named_modules()
             if isinstance(module, nn.Linear) and ".layers." in full}
    if not names:
        raise DamocError("found no linear layers inside decoder blocks to put adapters on")
    return sorted(names)


def _lora_config(model, opts: LoraOptions, run, **extra):
    from peft import LoraConfig

    r = opts.r or run.lora_r
    alpha = opts.alpha or (run.lora_alpha if opts.r is None else 2 * r)
    dropout = run.lora_dropout if opts.dropout is None else opts.dropout
    return LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, task_type="CAUSAL_LM",
                      target_modules=decoder_linears(model), **extra)


def _peft(model, config, run):
    from peft import get_peft_model, prepare_model_for_kbit_training

    if getattr(model, "is_loaded_in_4bit", False) or getattr(model, "is_loaded_in_8bit", False):
        # QLoRA: norms in fp32, input gradients on, before the adapters are added
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=run.gradient_checkpointing)
    return get_peft_model(model, config)


# ---------------------------------------------------------------- the methods


@method("full", learning_rate=2e-5, weight_gradients=True,
        description="every weight trained (6N FLOPs per token); the most memory: weights, gradients and "
                    "two AdamW moments")
def full(model, opts: NoOptions, run):
    return model


@method("lora", learning_rate=2e-4, options=LoraOptions, quantized=True,
        description="low-rank adapters on every linear layer of the decoder blocks (Hu et al. 2021); weights "
                    "frozen (4N per token); on 4-bit weights it is QLoRA")
def lora(model, opts: LoraOptions, run):
    return _peft(model, _lora_config(model, opts, run), run)


def _dora_norm_flops(body: float, opts: LoraOptions, run) -> float:
    """DoRA re-forms each adapted weight (W + BA, 2r flops per weight) and its column norms on every
    forward, and differentiates through them on the backward: about 3 x 2r x N per micro-batch."""
    from damoc.finetune.train import FinetuneConfig

    return 6.0 * (opts.r or (run or FinetuneConfig()).lora_r) * body


@method("dora", learning_rate=2e-4, options=LoraOptions, quantized=True, step_flops=_dora_norm_flops,
        description="weight-decomposed LoRA (Liu et al. 2024): a learned magnitude per output column and a "
                    "LoRA update of the direction; LoRA's cost plus the weight norms on every step")
def dora(model, opts: LoraOptions, run):
    return _peft(model, _lora_config(model, opts, run, use_dora=True), run)


# (IA)^3 scales the attention keys and values and the MLP's inner activations (Liu et al. 2022,
# T-Few); its paper trains at 3e-3, an order above LoRA, since its vectors start at one and move little.
_IA3_ATTENTION = ("k_proj", "v_proj", "key", "value")
_IA3_FEEDFORWARD = ("down_proj", "fc2", "w2", "c_proj")


@method("ia3", learning_rate=3e-3,
        description="(IA)^3 (Liu et al. 2022): learned vectors that rescale keys, values and the MLP's inner "
                    "activations; the fewest trainable parameters (thousands); 4N per token")
def ia3(model, opts: NoOptions, run):
    from peft import IA3Config

    names = decoder_linears(model)
    attention = [n for n in names if n in _IA3_ATTENTION]
    feedforward = [n for n in names if n in _IA3_FEEDFORWARD]
    if not attention or not feedforward:
        raise DamocError(f"ia3 needs the attention's key/value and the MLP's output projections; this model's "
                         f"decoder linears are {', '.join(names)}")
    config = IA3Config(task_type="CAUSAL_LM", target_modules=attention + feedforward,
                       feedforward_modules=feedforward)
    return _peft(model, config, run)


@method("loha", learning_rate=2e-4, options=LohaOptions, dense_delta=True,
        description="LoHa (Hyeon-Woo et al. 2022, LyCORIS): the update is the Hadamard product of two "
                    "low-rank matrices, a higher effective rank than LoRA for the same parameters; peft applies it "
                    "as a dense matrix, so 10N per token (4N, and 6N for the dense update)")
def loha(model, opts: LohaOptions, run):
    from peft import LoHaConfig

    config = LoHaConfig(r=opts.r, alpha=opts.alpha, task_type="CAUSAL_LM", target_modules=decoder_linears(model))
    return _peft(model, config, run)
