// SPDX-License-Identifier: MIT
pragma solidity ^0.8.25;

// Struct layouts and events of Raindex IOrderBookV4, byte for byte: the event
// signatures (and so topic0) must equal those of spec/IOrderBookV4.events.json.

struct IO {
    address token;
    uint8 decimals;
    uint256 vaultId;
}

struct EvaluableV3 {
    address interpreter;
    address store;
    bytes bytecode;
}

struct OrderV3 {
    address owner;
    EvaluableV3 evaluable;
    IO[] validInputs;
    IO[] validOutputs;
    bytes32 nonce;
}

struct ClearConfig {
    uint256 aliceInputIOIndex;
    uint256 aliceOutputIOIndex;
    uint256 bobInputIOIndex;
    uint256 bobOutputIOIndex;
    uint256 aliceBountyVaultId;
    uint256 bobBountyVaultId;
}

struct ClearStateChange {
    uint256 aliceOutput;
    uint256 bobOutput;
    uint256 aliceInput;
    uint256 bobInput;
}

// The spec ABI has `bytes32[] context` (part of TakeOrderV2's topic0).
struct SignedContextV1 {
    address signer;
    bytes32[] context;
    bytes signature;
}

struct TakeOrderConfigV3 {
    OrderV3 order;
    uint256 inputIOIndex;
    uint256 outputIOIndex;
    SignedContextV1[] signedContext;
}

/// One clear for `clearMany`: the arguments of `clear`.
struct Clear {
    OrderV3 alice;
    OrderV3 bob;
    ClearConfig clearConfig;
    ClearStateChange clearStateChange;
}

/// Emits IOrderBookV4 fill logs exactly as the real orderbook would, without
/// evaluating orders or moving tokens: the caller dictates every field, which
/// lets tests produce any log sequence (including malformed ones) cheaply.
contract TestOrderBook {
    event ClearV2(address sender, OrderV3 alice, OrderV3 bob, ClearConfig clearConfig);
    event AfterClear(address sender, ClearStateChange clearStateChange);
    event TakeOrderV2(address sender, TakeOrderConfigV3 config, uint256 input, uint256 output);

    /// `input`/`output` are the taker's: the order gave `input` and received `output`.
    function takeOrder(TakeOrderConfigV3 calldata config, uint256 input, uint256 output) external {
        emit TakeOrderV2(msg.sender, config, input, output);
    }

    /// Many TakeOrderV2 logs in one transaction, in array order.
    function takeOrders(TakeOrderConfigV3[] calldata configs, uint256[] calldata inputs, uint256[] calldata outputs)
        external
    {
        require(configs.length == inputs.length && configs.length == outputs.length, "length mismatch");
        for (uint256 i = 0; i < configs.length; i++) {
            emit TakeOrderV2(msg.sender, configs[i], inputs[i], outputs[i]);
        }
    }

    /// ClearV2 then its AfterClear, as the real orderbook orders them.
    function clear(
        OrderV3 calldata alice,
        OrderV3 calldata bob,
        ClearConfig calldata clearConfig,
        ClearStateChange calldata clearStateChange
    ) external {
        emit ClearV2(msg.sender, alice, bob, clearConfig);
        emit AfterClear(msg.sender, clearStateChange);
    }

    /// Several ClearV2/AfterClear pairs in one transaction, in array order.
    function clearMany(Clear[] calldata clears) external {
        for (uint256 i = 0; i < clears.length; i++) {
            emit ClearV2(msg.sender, clears[i].alice, clears[i].bob, clears[i].clearConfig);
            emit AfterClear(msg.sender, clears[i].clearStateChange);
        }
    }

    /// A lone ClearV2, to test a clear whose AfterClear never comes.
    function emitClearV2(OrderV3 calldata alice, OrderV3 calldata bob, ClearConfig calldata clearConfig) external {
        emit ClearV2(msg.sender, alice, bob, clearConfig);
    }

    /// A lone AfterClear, to test pairing across separate calls or orphans.
    function emitAfterClear(ClearStateChange calldata clearStateChange) external {
        emit AfterClear(msg.sender, clearStateChange);
    }
}
