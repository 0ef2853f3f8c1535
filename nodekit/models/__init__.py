"""Models of the book: ODE blocks, fields and classifiers built on nodekit's solvers."""

from .augmented import AugmentedConvField, AugmentedODE, conv_anode, mlp_anode
from .classifiers import ODENet, count_parameters, small_mnist_odenet
from .cnf import CNF, ConcatTimeMLP
from .fields import ConcatConv2d, ConvField, MLPField, group_norm
from .mnist_nets import MNIST_MODELS, PUBLISHED_MNIST, ResBlock, mnist_model, mnist_odenet, mnist_resnet, mnist_rknet
from .ode_block import ODEBlock, backward_nfe, forward_nfe, ode_blocks
from .robust import TisODENet, steady_state_penalty, tisode, with_solver, yan_cnn, yan_odenet

__all__ = [
    "AugmentedConvField",
    "AugmentedODE",
    "CNF",
    "ConcatConv2d",
    "ConcatTimeMLP",
    "ConvField",
    "MNIST_MODELS",
    "MLPField",
    "ODEBlock",
    "ODENet",
    "TisODENet",
    "PUBLISHED_MNIST",
    "ResBlock",
    "backward_nfe",
    "conv_anode",
    "count_parameters",
    "forward_nfe",
    "group_norm",
    "mlp_anode",
    "mnist_model",
    "mnist_odenet",
    "mnist_resnet",
    "mnist_rknet",
    "ode_blocks",
    "small_mnist_odenet",
    "steady_state_penalty",
    "tisode",
    "with_solver",
    "yan_cnn",
    "yan_odenet",
]
