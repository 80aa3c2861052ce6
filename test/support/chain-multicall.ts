/**
 * Puts Multicall3's `aggregate3` at its canonical address on an anvil node (which has none by
 * default), so the token resolver's multicall path runs against a real chain.
 */
import type { Hex } from 'viem';
import type { Anvil } from '../../src/chain/devnet/index.ts';
import { MULTICALL3 } from '../../src/chain/token-symbols.ts';

/** aggregate3 exactly as mds1/multicall3 declares it; the rest of Multicall3 is not needed. */
const SOURCE = `// SPDX-License-Identifier: MIT
pragma solidity ^0.8.25;
contract Multicall3 {
    struct Call3 { address target; bool allowFailure; bytes callData; }
    struct Result { bool success; bytes returnData; }
    function aggregate3(Call3[] calldata calls) external payable returns (Result[] memory returnData) {
        returnData = new Result[](calls.length);
        for (uint256 i = 0; i < calls.length; i++) {
            (bool success, bytes memory ret) = calls[i].target.call(calls[i].callData);
            require(success || calls[i].allowFailure, "Multicall3: call failed");
            returnData[i] = Result(success, ret);
        }
    }
}`;

async function runtimeBytecode(): Promise<Hex> {
  const { default: solc } = await import('solc');
  const input = {
    language: 'Solidity',
    sources: { 'Multicall3.sol': { content: SOURCE } },
    settings: { evmVersion: 'cancun', optimizer: { enabled: true, runs: 200 }, outputSelection: { '*': { '*': ['evm.deployedBytecode.object'] } } },
  };
  const output = JSON.parse(solc.compile(JSON.stringify(input)) as string) as {
    errors?: { severity: string; formattedMessage: string }[];
    contracts: Record<string, Record<string, { evm: { deployedBytecode: { object: string } } }>>;
  };
  const errors = (output.errors ?? []).filter((e) => e.severity === 'error');
  if (errors.length > 0) throw new Error(errors.map((e) => e.formattedMessage).join('\n'));
  return `0x${output.contracts['Multicall3.sol']!['Multicall3']!.evm.deployedBytecode.object}`;
}

export async function installMulticall3(anvil: Anvil): Promise<void> {
  await anvil.request('anvil_setCode', [MULTICALL3, await runtimeBytecode()]);
}
