// SPDX-License-Identifier: MIT
pragma solidity ^0.8.25;

/// ERC20 metadata only: the ledger reads `symbol()` and nothing else, and the
/// test orderbook moves no tokens.
contract TestToken {
    string public name;
    string public symbol;
    uint8 public immutable decimals;

    constructor(string memory name_, string memory symbol_, uint8 decimals_) {
        name = name_;
        symbol = symbol_;
        decimals = decimals_;
    }
}

/// A token whose `symbol()` reverts, for the "unknown token" path.
contract BrokenToken {
    function symbol() external pure returns (string memory) {
        revert("BrokenToken: no symbol");
    }
}
