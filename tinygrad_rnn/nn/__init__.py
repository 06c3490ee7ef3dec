"""Neural-network modules: containers, feed-forward layers and the recurrent cells and layers."""
from . import init, utils
from .cells import GRUCell, LSTMCell, RNNCell
from .layers import Dropout, Embedding, Linear
from .module import Module, ModuleList, Parameter
from .rnn import GRU, LSTM, RNN

__all__ = ["Module", "ModuleList", "Parameter", "Linear", "Embedding", "Dropout", "RNNCell", "LSTMCell",
           "GRUCell", "RNN", "LSTM", "GRU", "init", "utils"]
